//! PNG output: grids of images, the latent manifold, and a latent scatter plot.

use std::path::Path;

use tensor::Tensor;

use crate::error::{Result, VaeError};
use crate::io::atomic_write;

/// Encodes an 8-bit grayscale or RGB image as PNG bytes; `path` names it in errors.
pub(crate) fn encode_png(
    path: &Path,
    width: usize,
    height: usize,
    rgb: bool,
    pixels: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
    enc.set_color(if rgb { png::ColorType::Rgb } else { png::ColorType::Grayscale });
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| VaeError::Image { path: path.to_path_buf(), msg: e.to_string() };
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(pixels).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

/// Writes the rows of `images` (`[n, h·w]`, values in [0, 1]) as a grid of `cols` columns with
/// a 2-pixel border, to `path` (atomically).
pub fn write_grid(path: &Path, images: &Tensor<f32>, h: usize, w: usize, cols: usize) -> Result<()> {
    let n = images.shape()[0];
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let pad = 2;
    let (gw, gh) = (cols * (w + pad) + pad, rows * (h + pad) + pad);
    let mut px = vec![0u8; gw * gh];
    let data = images.to_vec();
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        for y in 0..h {
            for x in 0..w {
                let v = data[i * h * w + y * w + x].clamp(0.0, 1.0);
                px[(pad + r * (h + pad) + y) * gw + pad + c * (w + pad) + x] = (v * 255.0).round() as u8;
            }
        }
    }
    atomic_write(path, &encode_png(path, gw, gh, false, &px)?)
}

/// The standard normal quantile function (inverse CDF), by Acklam's rational approximation
/// (relative error below 1.2e-9 on (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The latent grid of Kingma & Welling's manifold figure: `n×n` points `(Φ⁻¹(u), Φ⁻¹(v))`
/// for `u, v` evenly spaced in (0, 1), as a `[n·n, 2]` tensor, row by row with the second
/// coordinate decreasing down the rows.
pub fn manifold_grid(n: usize) -> Tensor<f32> {
    let q: Vec<f64> = (0..n).map(|i| normal_quantile((i as f64 + 0.5) / n as f64)).collect();
    let mut v = Vec::with_capacity(n * n * 2);
    for r in 0..n {
        for &x in &q {
            v.push(x as f32);
            v.push(q[n - 1 - r] as f32);
        }
    }
    Tensor::from_vec(v, &[n * n, 2])
}

/// Ten distinguishable colours, one per digit.
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// A scatter plot of 2-D points coloured by label (0–9) on a white square of `size` pixels,
/// the axes spanning ±`extent` (points outside are clamped to the edge). A grey cross marks
/// the origin. `legend` holds one example image per label (`h·w` values in [0, 1], with `h`
/// and `w`), drawn in its label's colour along the top edge as the key.
pub fn write_scatter(
    path: &Path,
    points: &Tensor<f32>,
    labels: &[u8],
    legend: &[(u8, Vec<f32>, usize, usize)],
    size: usize,
    extent: f32,
) -> Result<()> {
    let mut px = vec![255u8; size * size * 3];
    let to_px = |v: f32| (((v / extent).clamp(-1.0, 1.0) + 1.0) * 0.5 * (size - 1) as f32).round() as usize;
    for i in 0..size {
        for c in 0..3 {
            px[(size / 2 * size + i) * 3 + c] = 200;
            px[(i * size + size / 2) * 3 + c] = 200;
        }
    }
    let p = points.to_vec();
    for (i, &label) in labels.iter().enumerate() {
        let (x, y) = (to_px(p[2 * i]), size - 1 - to_px(p[2 * i + 1]));
        let colour = PALETTE[label as usize % 10];
        for dy in 0..2 {
            for dx in 0..2 {
                let (xx, yy) = ((x + dx).min(size - 1), (y + dy).min(size - 1));
                px[(yy * size + xx) * 3..(yy * size + xx) * 3 + 3].copy_from_slice(&colour);
            }
        }
    }
    // The key: each label's example image, inked in the label's colour.
    let mut x0 = 4;
    for (label, img, h, w) in legend {
        let colour = PALETTE[*label as usize % 10];
        for y in 0..*h {
            for x in 0..*w {
                let (xx, yy) = (x0 + x, 4 + y);
                if xx >= size || yy >= size {
                    continue;
                }
                let ink = img[y * w + x].clamp(0.0, 1.0);
                for c in 0..3 {
                    let bg = px[(yy * size + xx) * 3 + c] as f32;
                    px[(yy * size + xx) * 3 + c] = (bg + ink * (colour[c] as f32 - bg)).round() as u8;
                }
            }
        }
        x0 += w + 2;
    }
    atomic_write(path, &encode_png(path, size, size, true, &px)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_inverts_the_cdf() {
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-7);
        assert!((normal_quantile(0.001) + 3.090232306167813).abs() < 1e-7);
        assert!((normal_quantile(0.3) + normal_quantile(0.7)).abs() < 1e-12);
    }

    #[test]
    fn grid_and_scatter_write_valid_pngs() {
        let dir = crate::io::test_dir("images");
        let imgs = Tensor::from_vec((0..3 * 4).map(|i| i as f32 / 11.0).collect(), &[3, 4]);
        write_grid(&dir.join("g.png"), &imgs, 2, 2, 2).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(dir.join("g.png")).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (2 * 4 + 2, 2 * 4 + 2));
        let legend = vec![(1u8, vec![1.0; 4], 2, 2)];
        write_scatter(&dir.join("s.png"), &manifold_grid(3), &[0, 1, 2, 3, 4, 5, 6, 7, 8], &legend, 50, 3.0)
            .unwrap();
        assert!(std::fs::metadata(dir.join("s.png")).unwrap().len() > 50);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
