//! Line plots drawn with plotters into a buffer and written like every other image (PNG,
//! atomically): `curves.png`, the per-epoch train and test negative ELBO of a run, and the
//! figures of the guide. The text uses a
//! copy of DejaVu Sans cut down to ASCII (`assets/`, 26 KB), so drawing needs no system fonts.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Result, VaeError};
use crate::images::encode_png;
use crate::io::atomic_write;
use crate::train::EpochMetrics;

#[cfg(not(all(target_arch = "wasm32", not(target_os = "wasi"))))]
fn register() {
    use plotters::style::{register_font, FontStyle};
    use std::sync::Once;
    /// DejaVu Sans, printable ASCII only (see `assets/DejaVu-LICENSE.txt`).
    const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-ascii.ttf");
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would leave text undrawn,
        // which the test of this module would notice.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// In a browser (wasm32-unknown-unknown) plotters has no font registry: its text goes
/// through the page's canvas, so a plot with text cannot be drawn into a buffer there and
/// [`write_lines`] returns the drawing error.
#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
fn register() {}

/// One named line of a plot, in its colour.
pub struct Series {
    /// The legend's text.
    pub name: String,
    /// Red, green, blue.
    pub color: (u8, u8, u8),
    /// The points, in order.
    pub points: Vec<(f64, f64)>,
}

/// Draws the train and test negative ELBO per epoch (nats per image) to `path`.
pub fn write_curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    write_lines(path, CURVES_CAPTION, "epoch", &curve_series(history))
}

const CURVES_CAPTION: &str = "negative ELBO per image (nats)";

/// The train and test lines of [`write_curves`].
fn curve_series(history: &[EpochMetrics]) -> [Series; 2] {
    let line = |name: &str, color, f: fn(&EpochMetrics) -> f64| Series {
        name: name.into(),
        color,
        points: history.iter().map(|m| (m.epoch as f64, f(m))).collect(),
    };
    [line("train", (31, 119, 180), |m| m.train_neg_elbo), line("test", (214, 39, 40), |m| m.test_neg_elbo)]
}

/// Draws `series` as lines with dots and a legend under `caption`, the x axis described as
/// `x_desc`, to the PNG `path` (720×440).
pub fn write_lines(path: &Path, caption: &str, x_desc: &str, series: &[Series]) -> Result<()> {
    register();
    let (w, h) = (720u32, 440u32);
    let mut px = vec![255u8; (w * h * 3) as usize];
    draw(&mut px, w, h, caption, x_desc, series)
        .map_err(|msg| VaeError::Image { path: path.to_path_buf(), msg })?;
    atomic_write(path, &encode_png(path, w as usize, h as usize, true, &px)?)
}

/// The largest magnitude of a coordinate that is drawn; a point beyond it (or not finite)
/// is left out of the plot.
const DRAWN: f64 = 1e12;

fn draw(
    px: &mut [u8],
    w: u32,
    h: u32,
    caption: &str,
    x_desc: &str,
    series: &[Series],
) -> std::result::Result<(), String> {
    let root = BitMapBackend::with_buffer(px, (w, h)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    // Only points within ±DRAWN are drawn: the axes' span stays finite and the plotting
    // crate's search for tick marks ends (a span near f64::MAX would not).
    let drawn = |p: &&(f64, f64)| p.0.abs() <= DRAWN && p.1.abs() <= DRAWN;
    let series: Vec<(&Series, Vec<(f64, f64)>)> =
        series.iter().map(|s| (s, s.points.iter().filter(drawn).copied().collect())).collect();
    let span = |f: fn(&(f64, f64)) -> f64| {
        let values = series.iter().flat_map(|(_, points)| points.iter().map(f));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        }
    };
    let (lo, hi) = span(|p| p.1);
    let pad = ((hi - lo) * 0.05).max(0.5);
    let (x0, x1) = span(|p| p.0);
    let x1 = x1.max(x0 + 1.0);
    let longest = series.iter().map(|(_, points)| points.len()).max().unwrap_or(0);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_labels(longest.clamp(2, 10))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(e)?;
    for (s, points) in &series {
        let color = RGBColor(s.color.0, s.color.1, s.color.2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(e)?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(e)?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(e)?;
    root.present().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_drawn_with_text_and_both_lines() {
        let history: Vec<EpochMetrics> = (1..=5)
            .map(|e| EpochMetrics {
                epoch: e,
                train_neg_elbo: 160.0 / e as f64 + 100.0,
                test_neg_elbo: 150.0 / e as f64 + 101.0,
                epoch_seconds: 1.0,
            })
            .collect();
        register();
        let (w, h) = (720u32, 440u32);
        let mut px = vec![255u8; (w * h * 3) as usize];
        draw(&mut px, w, h, CURVES_CAPTION, "epoch", &curve_series(&history)).unwrap();
        let count = |c: [u8; 3]| px.chunks_exact(3).filter(|p| *p == c).count();
        assert!(count([31, 119, 180]) > 200, "the train line");
        assert!(count([214, 39, 40]) > 200, "the test line");
        // Text and axes: dark pixels beyond the two lines.
        let dark = px.chunks_exact(3).filter(|p| p.iter().all(|&v| v < 80)).count();
        assert!(dark > 2000, "{dark} dark pixels: no text or axes");
        let dir = crate::io::test_dir("curves");
        write_curves(&dir.join("curves.png"), &history).unwrap();
        assert!(std::fs::read(dir.join("curves.png")).unwrap().starts_with(b"\x89PNG"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Values near the ends of f64's range (as an edited checkpoint's history may hold) are
    /// left out and the plot is drawn; handed to the plotting crate they hang it.
    #[test]
    fn huge_values_are_left_out_and_the_plot_ends() {
        let history: Vec<EpochMetrics> = (1..=4)
            .map(|e| EpochMetrics {
                epoch: e,
                train_neg_elbo: [100.0, 1e308, 99.0, f64::NAN][e - 1],
                test_neg_elbo: [101.0, -1e308, 98.0, f64::INFINITY][e - 1],
                epoch_seconds: 1.0,
            })
            .collect();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            register();
            let (w, h) = (720u32, 440u32);
            let mut px = vec![255u8; (w * h * 3) as usize];
            let drawn = draw(&mut px, w, h, CURVES_CAPTION, "epoch", &curve_series(&history));
            let _ = done.send(drawn.map(|_| px.chunks_exact(3).filter(|p| *p == [31, 119, 180]).count()));
        });
        let train_pixels = finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("drawing did not end within a minute")
            .unwrap();
        assert!(train_pixels > 100, "the train line's finite points are drawn");
    }
}
