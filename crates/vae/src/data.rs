//! MNIST-style data: the IDX reader (raw or gzip), datasets kept as bytes, shuffled batches
//! and dynamic binarization.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use tensor::{Element, Tensor};

use crate::error::{Result, VaeError};

/// An IDX file's contents: dimensions and the raw unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Extent of each dimension (the first is the item count).
    pub dims: Vec<usize>,
    /// The items, row-major.
    pub data: Vec<u8>,
}

/// Why bytes are not an IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdxError {
    /// The gzip stream is broken (the decoder's words).
    #[error("not a valid gzip file ({0})")]
    Gzip(String),
    /// Reading failed (the operating system's words).
    #[error("read failed ({0})")]
    Read(String),
    /// Fewer than the four bytes of the magic number.
    #[error("too short for an IDX header ({0} bytes)")]
    ShortHeader(usize),
    /// A magic number that does not start with two zero bytes.
    #[error("wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file", .0[0], .0[1], .0[2], .0[3])]
    Magic([u8; 4]),
    /// An element type other than unsigned bytes (0x08).
    #[error("element type 0x{0:02x} is not unsigned bytes (0x08)")]
    ElementType(u8),
    /// A header with no dimensions.
    #[error("IDX rank 0 has no items")]
    RankZero,
    /// The dimensions end before the header says.
    #[error("truncated header: {rank} dimensions need {} bytes, file has {}", 4 + 4 * rank, 4 + got)]
    TruncatedHeader {
        /// The rank the magic number announces.
        rank: usize,
        /// Header bytes after the magic number.
        got: usize,
    },
    /// Dimensions whose product overflows.
    #[error("dimensions {0:?} overflow")]
    Overflow(Vec<usize>),
    /// Dimensions that need more memory than can be allocated.
    #[error("dimensions {dims:?} need {len} bytes of memory, more than can be allocated")]
    OutOfMemory {
        /// The dimensions.
        dims: Vec<usize>,
        /// The data bytes they need.
        len: usize,
    },
    /// Fewer data bytes than the dimensions need.
    #[error("truncated: dimensions {dims:?} need {len} data bytes, file has {got}")]
    Truncated {
        /// The dimensions.
        dims: Vec<usize>,
        /// The data bytes they need.
        len: usize,
        /// The data bytes there are.
        got: usize,
    },
    /// More bytes after the data.
    #[error("trailing data after {len} data bytes for dimensions {dims:?}")]
    Trailing {
        /// The dimensions.
        dims: Vec<usize>,
        /// The data bytes they need.
        len: usize,
    },
}

/// Reads an IDX file of unsigned bytes (type code 0x08), gzip-compressed (`.gz`, any number
/// of gzip members) or raw. The header is read first and then exactly the bytes it
/// announces, straight into one buffer that grows as they arrive (a file shorter or longer
/// than its header says, or one that needs more memory than there is, is refused).
/// Every problem, from a missing file to a truncated one, is a [`VaeError`] naming the file;
/// anything but a regular file is refused before it is opened.
pub fn read_idx(path: &Path) -> Result<Idx> {
    crate::io::require_regular_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| VaeError::io(path, e))?;
    let is_gz = path.extension().is_some_and(|e| e == "gz");
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    let parsed =
        if is_gz { read_idx_from(MultiGzDecoder::new(reader), true) } else { read_idx_from(reader, false) };
    parsed.map_err(|e| VaeError::format(path, e.to_string()))
}

/// Decodes the bytes of an IDX file, gunzipping them first when `gzip` is set. Any input
/// gives an [`Idx`] or an [`IdxError`], never a panic (the fuzz target `idx` checks this).
pub fn decode_idx(bytes: &[u8], gzip: bool) -> std::result::Result<Idx, IdxError> {
    if gzip {
        read_idx_from(MultiGzDecoder::new(bytes), true)
    } else {
        read_idx_from(bytes, false)
    }
}

/// Parses IDX bytes: a 4-byte magic `0 0 type rank`, `rank` big-endian u32 dimensions, then
/// the data.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<Idx, IdxError> {
    read_idx_from(bytes, false)
}

/// Reads an IDX stream: the header, then exactly the data it announces, then checks that
/// nothing follows. `gzip` only words the messages about a broken stream.
fn read_idx_from(mut r: impl Read, gzip: bool) -> std::result::Result<Idx, IdxError> {
    let stream_err = |e: std::io::Error| {
        if gzip
            && matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::InvalidData | ErrorKind::UnexpectedEof)
        {
            IdxError::Gzip(e.to_string())
        } else {
            IdxError::Read(e.to_string())
        }
    };
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut r, &mut magic).map_err(stream_err)?;
    if got < 4 {
        return Err(IdxError::ShortHeader(got));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(IdxError::Magic(magic));
    }
    if magic[2] != 0x08 {
        return Err(IdxError::ElementType(magic[2]));
    }
    let rank = magic[3] as usize;
    if rank == 0 {
        return Err(IdxError::RankZero);
    }
    let mut dims_raw = vec![0u8; 4 * rank];
    let got = read_up_to(&mut r, &mut dims_raw).map_err(stream_err)?;
    if got < dims_raw.len() {
        return Err(IdxError::TruncatedHeader { rank, got });
    }
    let dims: Vec<usize> =
        dims_raw.chunks_exact(4).map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize).collect();
    let Some(len) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(IdxError::Overflow(dims));
    };
    // Memory is claimed as data arrives (up to UPFRONT at once), so a header that promises
    // more than the file holds costs nothing, and running out of memory is an error, not
    // an abort.
    let oom = |_| IdxError::OutOfMemory { dims: dims.clone(), len };
    let mut data: Vec<u8> = Vec::new();
    data.try_reserve_exact(len.min(UPFRONT)).map_err(oom)?;
    let mut chunk = vec![0u8; 1 << 16];
    let mut body = (&mut r).take(len as u64);
    loop {
        let n = match body.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(stream_err(e)),
        };
        data.try_reserve(n).map_err(oom)?;
        data.extend_from_slice(&chunk[..n]);
    }
    let got = data.len();
    if got < len {
        return Err(IdxError::Truncated { dims, len, got });
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut r, &mut extra).map_err(stream_err)? > 0 {
        return Err(IdxError::Trailing { dims, len });
    }
    Ok(Idx { dims, data })
}

/// The most memory an IDX read claims before the data to fill it has arrived.
const UPFRONT: usize = 1 << 24;

/// Fills as much of `buf` as the stream has; returns how much that was.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The seed of the one binarization of a test set on which every binary model (each VAE
/// row's importance-weighted bound, the mixture models) is evaluated, so their numbers are
/// on the same images.
pub const TEST_BINARIZATION_SEED: u64 = 123;

/// One draw of a binarized pixel of intensity `p`: 255 is always on and 0 never; between,
/// on with probability p/255.
#[inline]
fn pixel_on<R: Rng + ?Sized>(rng: &mut R, p: u8) -> bool {
    on_for_word(rng.random::<u32>(), p)
}

/// Whether a pixel of intensity `p` is on for the generator's word `w`.
#[inline]
fn on_for_word(w: u32, p: u8) -> bool {
    w % 255 < p as u32
}

/// Images and labels, kept as bytes (pixels 0–255) and converted per batch.
#[derive(Clone, Debug)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Dataset {
    /// A dataset from raw parts. `images.len()` must be `labels.len() · rows · cols`.
    pub fn new(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Result<Self> {
        if images.len() != labels.len() * rows * cols {
            return Err(VaeError::Dataset(format!(
                "{} image bytes do not make {} images of {rows}x{cols}",
                images.len(),
                labels.len()
            )));
        }
        Ok(Dataset { images, labels, rows, cols })
    }

    /// Loads an IDX image file and its label file, checking that they agree.
    pub fn load(images: &Path, labels: &Path) -> Result<Self> {
        Self::from_idx((images, read_idx(images)?), (labels, read_idx(labels)?))
    }

    /// A dataset from a decoded IDX image file and label file (each with the name errors
    /// give it), checking that they agree.
    pub fn from_idx((images, im): (&Path, Idx), (labels, lb): (&Path, Idx)) -> Result<Self> {
        if im.dims.len() != 3 {
            return Err(VaeError::format(
                images,
                format!("image file has dimensions {:?}, expected [count, rows, cols]", im.dims),
            ));
        }
        if im.dims[1] == 0 || im.dims[2] == 0 {
            return Err(VaeError::format(
                images,
                format!("image file has dimensions {:?}: images of no pixels", im.dims),
            ));
        }
        if lb.dims.len() != 1 {
            return Err(VaeError::format(
                labels,
                format!("label file has dimensions {:?}, expected [count]", lb.dims),
            ));
        }
        if im.dims[0] != lb.dims[0] {
            return Err(VaeError::format(
                labels,
                format!("{} labels for {} images in {}", lb.dims[0], im.dims[0], images.display()),
            ));
        }
        Dataset::new(im.data, lb.data, im.dims[1], im.dims[2])
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    /// Image height and width.
    pub fn image_shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The label of image `i`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The pixels of image `i` as bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.dim()..(i + 1) * self.dim()]
    }

    /// Keeps only the first `n` images (all of them when `n` is larger).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.images.truncate(n * self.dim());
        self.labels.truncate(n);
    }

    /// The images at `indices` as a `[len, dim]` tensor scaled to [0, 1]; with `binarize`,
    /// each pixel is instead drawn as 1 with probability equal to its intensity.
    pub fn batch<T: Element, R: Rng + ?Sized>(
        &self,
        indices: &[usize],
        binarize: Option<&mut R>,
    ) -> Tensor<T> {
        let d = self.dim();
        Tensor::from_fill(&[indices.len(), d], |out| match binarize {
            None => {
                let lut: [T; 256] = std::array::from_fn(|p| T::from_f64_lossy(p as f64 / 255.0));
                for (row, &i) in out.chunks_exact_mut(d).zip(indices) {
                    row.iter_mut().zip(self.image(i)).for_each(|(o, &p)| *o = lut[p as usize]);
                }
            }
            Some(rng) => {
                // The generator's words drawn in blocks: the same words, in the same order, as
                // one `pixel_on` per pixel (a test checks this against `binarized`).
                let mut words = [0u32; 256];
                for (row, &i) in out.chunks_exact_mut(d).zip(indices) {
                    for (out, pixels) in row.chunks_mut(words.len()).zip(self.image(i).chunks(words.len())) {
                        let words = &mut words[..out.len()];
                        rng.fill(words);
                        for ((o, &p), &w) in out.iter_mut().zip(pixels).zip(words.iter()) {
                            *o = if on_for_word(w, p) { T::one() } else { T::zero() };
                        }
                    }
                }
            }
        })
    }

    /// A copy with every pixel drawn once as on (255) with probability equal to its
    /// intensity, or off (0), from a generator seeded with `seed`: one fixed binarization,
    /// so that models are compared on the same binary images.
    pub fn binarized(&self, seed: u64) -> Dataset {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let images = self.images.iter().map(|&p| if pixel_on(&mut rng, p) { 255 } else { 0 }).collect();
        Dataset { images, labels: self.labels.clone(), rows: self.rows, cols: self.cols }
    }

    /// The images at `indices` as a `[len, dim]` tensor of intensities in [0, 1] (no
    /// binarization).
    pub fn intensities<T: Element>(&self, indices: &[usize]) -> Tensor<T> {
        self.batch::<T, rand::rngs::StdRng>(indices, None)
    }

    /// The mean image, `[dim]`, intensities in [0, 1].
    pub fn mean_image<T: Element>(&self) -> Tensor<T> {
        let d = self.dim();
        let mut sum = vec![0u64; d];
        for img in self.images.chunks_exact(d.max(1)) {
            sum.iter_mut().zip(img).for_each(|(s, &p)| *s += p as u64);
        }
        let scale = 1.0 / (255.0 * self.len().max(1) as f64);
        Tensor::from_vec(sum.iter().map(|&s| T::from_f64_lossy(s as f64 * scale)).collect(), &[d])
    }

    /// The image indices in batches of `batch_size`, shuffled by `rng` when given; the last
    /// batch may be smaller.
    pub fn batches<R: Rng + ?Sized>(&self, batch_size: usize, shuffle: Option<&mut R>) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(rng) = shuffle {
            order.shuffle(rng);
        }
        order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
    }
}

/// The MNIST training and test sets.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// 60,000 training images for MNIST.
    pub train: Dataset,
    /// 10,000 test images for MNIST.
    pub test: Dataset,
}

/// The four standard file names, looked up with and without `.gz`.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Mnist {
    /// Loads the four IDX files (each raw or `.gz`) from `dir`, as MNIST and Fashion-MNIST
    /// name them.
    pub fn load(dir: &Path) -> Result<Self> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(VaeError::io(
                    dir,
                    std::io::Error::other("not a directory (--data names the directory of the IDX files)"),
                ))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(VaeError::io(
                    dir,
                    std::io::Error::new(ErrorKind::NotFound, "data directory not found"),
                ))
            }
            Err(e) => return Err(VaeError::io(dir, e)),
        }
        // The .gz form if anything by that name exists (a non-file is refused when read),
        // else the raw form.
        let find = |name: &str| -> Result<PathBuf> {
            let gz = dir.join(format!("{name}.gz"));
            let raw = dir.join(name);
            if gz.symlink_metadata().is_ok() {
                Ok(gz)
            } else if raw.symlink_metadata().is_ok() {
                Ok(raw)
            } else {
                Err(VaeError::io(
                    gz,
                    std::io::Error::new(ErrorKind::NotFound, "file not found (nor without .gz)"),
                ))
            }
        };
        let load = |images: &str, labels: &str| -> Result<Dataset> {
            let (images, labels) = (find(images)?, find(labels)?);
            let set = Dataset::load(&images, &labels)?;
            if set.is_empty() {
                return Err(VaeError::format(images, "holds no images"));
            }
            Ok(set)
        };
        let train = load(FILES[0], FILES[1])?;
        let test = load(FILES[2], FILES[3])?;
        if train.image_shape() != test.image_shape() {
            return Err(VaeError::format(
                find(FILES[2])?,
                format!(
                    "test images are {:?}, training images {:?}",
                    test.image_shape(),
                    train.image_shape()
                ),
            ));
        }
        Ok(Mnist { train, test })
    }
}

#[cfg(test)]
mod tests {
    /// A header announcing terabytes over a few bytes of data (found by the `idx` fuzz
    /// target, where reserving the announced size up front aborted): a plain error.
    #[test]
    fn a_header_announcing_terabytes_is_an_error() {
        let mut bytes = vec![0, 0, 8, 3];
        for d in [0x10000u32, 0x10000, 0x1000] {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend([1, 2, 3]);
        let err = decode_idx(&bytes, false).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "truncated: dimensions [65536, 65536, 4096] need 17592186044416 data bytes, file has 3"
            ),
            "{err}"
        );
    }

    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn parses_and_rejects() {
        let ok = parse_idx(&idx(&[2, 1, 2], &[1, 2, 3, 4])).unwrap();
        assert_eq!(ok.dims, vec![2, 1, 2]);
        assert_eq!(
            parse_idx(&idx(&[2, 1, 2], &[1, 2, 3])).unwrap_err(),
            IdxError::Truncated { dims: vec![2, 1, 2], len: 4, got: 3 }
        );
        assert_eq!(parse_idx(&[1, 2, 3, 4]).unwrap_err(), IdxError::Magic([1, 2, 3, 4]));
        assert!(parse_idx(&[1, 2, 3, 4]).unwrap_err().to_string().contains("magic"));
        assert_eq!(parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 0]).unwrap_err(), IdxError::ElementType(0x0d));
    }

    /// Every way a header or body can be wrong is its own error; a stream that is not gzip
    /// never reports a gzip error.
    #[test]
    fn every_malformed_header_and_body_is_refused() {
        let refused = |bytes: &[u8]| parse_idx(bytes).unwrap_err();
        assert_eq!(refused(&[]), IdxError::ShortHeader(0));
        assert_eq!(refused(&[0, 0, 8]), IdxError::ShortHeader(3));
        assert_eq!(refused(&[0, 1, 8, 1]), IdxError::Magic([0, 1, 8, 1]));
        assert_eq!(refused(&[1, 0, 8, 1]), IdxError::Magic([1, 0, 8, 1]));
        assert_eq!(refused(&[0, 0, 8, 0]), IdxError::RankZero);
        assert_eq!(refused(&[0, 0, 8, 2, 0, 0, 0, 1, 0]), IdxError::TruncatedHeader { rank: 2, got: 5 });
        let huge = u32::MAX as usize;
        assert_eq!(refused(&idx(&[u32::MAX; 3], &[])), IdxError::Overflow(vec![huge; 3]));
        assert_eq!(refused(&idx(&[2], &[1, 2, 3])), IdxError::Trailing { dims: vec![2], len: 2 });
        assert_eq!(parse_idx(&idx(&[3], &[7, 8, 9])).unwrap(), Idx { dims: vec![3], data: vec![7, 8, 9] });
        assert_eq!(parse_idx(&idx(&[2, 0], &[])).unwrap(), Idx { dims: vec![2, 0], data: vec![] });
        assert!(matches!(decode_idx(b"not gzip at all", true).unwrap_err(), IdxError::Gzip(_)));
        // A failing disk, in the header or in the data.
        for fail in [6, 10] {
            let broken =
                Stream { bytes: idx(&[4], &[1, 2, 3, 4]), at: 0, interrupt: false, fail: Some(fail) };
            assert!(matches!(read_idx_from(broken, false).unwrap_err(), IdxError::Read(_)), "at {fail}");
        }
    }

    /// A reader of `bytes` in chunks of at most 3, failing with `ErrorKind::Interrupted`
    /// (which a reader retries) before each, and with a disk's error from byte `fail` on.
    struct Stream {
        bytes: Vec<u8>,
        at: usize,
        interrupt: bool,
        fail: Option<usize>,
    }

    impl Read for Stream {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(ErrorKind::Interrupted.into());
            }
            if self.fail.is_some_and(|f| self.at >= f) {
                return Err(std::io::Error::new(ErrorKind::InvalidData, "the disk is failing"));
            }
            let n = buf.len().min(3).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn interrupted_reads_are_retried() {
        let data: Vec<u8> = (0..100).collect();
        let stream = Stream { bytes: idx(&[10, 10], &data), at: 0, interrupt: false, fail: None };
        assert_eq!(read_idx_from(stream, false).unwrap(), Idx { dims: vec![10, 10], data });
    }

    /// `read_idx` gunzips a `.gz` file and reads any other raw, naming the file in errors.
    #[test]
    fn files_are_read_raw_or_gunzipped_by_their_name() {
        use std::io::Write;
        let dir = crate::io::test_dir("idx");
        let bytes = idx(&[2, 2], &[1, 2, 3, 4]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes).unwrap();
        std::fs::write(dir.join("a.idx.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.join("a.idx"), &bytes).unwrap();
        for name in ["a.idx.gz", "a.idx"] {
            assert_eq!(read_idx(&dir.join(name)).unwrap().data, vec![1, 2, 3, 4], "{name}");
        }
        std::fs::write(dir.join("b.idx.gz"), &bytes).unwrap();
        let err = read_idx(&dir.join("b.idx.gz")).unwrap_err().to_string();
        assert!(err.contains("b.idx.gz") && err.contains("gzip"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// An image file must be `[count, rows, cols]` of some pixels, its label file `[count]`
    /// with the same count; the dataset then answers for what it holds.
    #[test]
    fn image_and_label_files_must_agree() {
        let file = |dims: &[usize], data: &[u8]| Idx { dims: dims.to_vec(), data: data.to_vec() };
        let from = |im: Idx, lb: Idx| Dataset::from_idx((Path::new("im"), im), (Path::new("lb"), lb));
        let pixels: Vec<u8> = (0..6).map(|i| i * 40).collect();
        let labels = file(&[3], &[7, 8, 9]);
        let err = |r: Result<Dataset>| r.unwrap_err().to_string();
        assert!(err(from(file(&[3, 2], &pixels), labels.clone())).contains("expected [count, rows, cols]"));
        assert!(err(from(file(&[3, 0, 2], &[]), labels.clone())).contains("images of no pixels"));
        assert!(err(from(file(&[3, 2, 0], &[]), labels.clone())).contains("images of no pixels"));
        assert!(err(from(file(&[3, 1, 2], &pixels), file(&[3, 1], &[7, 8, 9]))).contains("expected [count]"));
        assert!(err(from(file(&[3, 1, 2], &pixels), file(&[2], &[7, 8]))).contains("2 labels for 3 images"));
        let mut ds = from(file(&[3, 1, 2], &pixels), labels).unwrap();
        assert_eq!((ds.len(), ds.is_empty(), ds.dim(), ds.image_shape()), (3, false, 2, (1, 2)));
        assert_eq!((ds.label(0), ds.label(2), ds.image(2)), (7, 9, &[160, 200][..]));
        assert_eq!(ds.mean_image::<f64>().to_vec(), vec![240.0 / 765.0, 360.0 / 765.0]);
        ds.truncate(5);
        assert_eq!(ds.len(), 3);
        ds.truncate(2);
        assert_eq!(
            (ds.len(), ds.image(1), ds.mean_image::<f64>().to_vec()),
            (2, &[80, 120][..], vec![80.0 / 510.0, 160.0 / 510.0])
        );
        ds.truncate(1);
        assert_eq!((ds.len(), ds.images.len()), (1, 2));
        ds.truncate(0);
        assert!(ds.is_empty() && ds.images.is_empty());
    }

    /// `Mnist::load` names what is wrong with a data directory: missing, not a directory, a
    /// file missing in both forms, a set of no images, test images of another size.
    #[test]
    fn a_data_directory_is_refused_with_what_is_wrong() {
        let dir = crate::io::test_dir("mnist");
        let err = |d: &Path| Mnist::load(d).unwrap_err().to_string();
        assert!(err(&dir.join("nowhere")).contains("data directory not found"));
        std::fs::write(dir.join("plain"), b"").unwrap();
        assert!(err(&dir.join("plain")).contains("not a directory"));
        // Any other failure to look at it is the system's own error.
        let under_a_file = err(&dir.join("plain").join("sub"));
        assert!(under_a_file.contains("os error") && !under_a_file.contains("not found"), "{under_a_file}");
        assert!(err(&dir).contains("train-images-idx3-ubyte.gz: file not found (nor without .gz)"));
        let write =
            |name: &str, dims: &[u32], data: &[u8]| std::fs::write(dir.join(name), idx(dims, data)).unwrap();
        write(FILES[0], &[2, 1, 2], &[0, 51, 102, 255]);
        write(FILES[1], &[2], &[3, 4]);
        write(FILES[2], &[0, 1, 2], &[]);
        write(FILES[3], &[0], &[]);
        assert!(err(&dir).contains("t10k-images-idx3-ubyte: holds no images"));
        write(FILES[2], &[1, 2, 1], &[9, 9]);
        write(FILES[3], &[1], &[5]);
        assert!(err(&dir).contains("test images are (2, 1), training images (1, 2)"));
        write(FILES[2], &[1, 1, 2], &[9, 9]);
        let mnist = Mnist::load(&dir).unwrap();
        assert_eq!((mnist.train.len(), mnist.test.len(), mnist.test.label(0)), (2, 1, 5));
        assert_eq!(mnist.train.mean_image::<f64>().to_vec(), vec![102.0 / 510.0, 306.0 / 510.0]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn batches_cover_everything_once_and_binarize_is_fair() {
        let ds = Dataset::new((0..10 * 4).map(|i| (i * 6) as u8).collect(), (0..10).collect(), 2, 2).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let b = ds.batches(3, Some(&mut rng));
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        let mut all: Vec<usize> = b.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let x = ds.intensities::<f32>(&[1]);
        assert_eq!(x.to_vec(), vec![24. / 255., 30. / 255., 36. / 255., 42. / 255.]);
        // Binarization: mean over many draws approaches the intensity.
        let ds = Dataset::new(vec![0, 64, 191, 255], vec![0], 2, 2).unwrap();
        let mut sums = [0.0f64; 4];
        for _ in 0..20_000 {
            let x = ds.batch::<f64, _>(&[0], Some(&mut rng)).to_vec();
            sums.iter_mut().zip(x).for_each(|(s, v)| *s += v);
        }
        assert_eq!(sums[0], 0.0);
        assert_eq!(sums[3], 20_000.0);
        assert!((sums[1] / 20_000.0 - 64.0 / 255.0).abs() < 0.01);
        assert!((sums[2] / 20_000.0 - 191.0 / 255.0).abs() < 0.01);
    }

    #[test]
    fn block_draws_are_the_per_pixel_draws() {
        // Images of 28x28 = 784 pixels (blocks of 256 and a 16-pixel tail): a batch drawn in
        // blocks is the fixed binarization drawn pixel by pixel from the same seed, so a run
        // binarizes exactly as it did when every pixel drew its own word.
        let n = 5;
        let images: Vec<u8> = (0..n * 784).map(|i| (i * 37 % 256) as u8).collect();
        let ds = Dataset::new(images, vec![0; n], 28, 28).unwrap();
        let by_pixel = ds.binarized(9).intensities::<f32>(&[0, 1, 2, 3, 4]);
        let by_block = ds.batch::<f32, _>(&[0, 1, 2, 3, 4], Some(&mut StdRng::seed_from_u64(9)));
        assert_eq!(by_block.to_vec(), by_pixel.to_vec());
        // Another order draws the words in that order.
        let by_block = ds.batch::<f32, _>(&[3, 1], Some(&mut StdRng::seed_from_u64(9)));
        let fixed =
            Dataset::new(ds.image(3).iter().chain(ds.image(1)).copied().collect(), vec![0; 2], 28, 28)
                .unwrap()
                .binarized(9);
        assert_eq!(by_block.to_vec(), fixed.intensities::<f32>(&[0, 1]).to_vec());
    }
}
