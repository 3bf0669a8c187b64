//! QR codes for the login page, drawn per sign-in, so cheaply.
//!
//! `qrcode::QrCode::new` tries all eight masks and scores each (most of its time) and its
//! SVG renderer writes one rectangle per dark module. Here the crate's encoder and error
//! correction are used with one fixed mask — every mask is valid, the scoring only tunes
//! scanning margins — and everything that depends only on the version is worked out once
//! per version ([`Layout`]): the function patterns, the format information and the mask
//! over the data area, and which module each bit of the codewords lands on. A code is then
//! the layout's modules with the set bits flipped. Each row's dark runs become one stroked
//! path segment each, written as bytes (through `core::fmt` the numbers were a twentieth of
//! a sign-in's CPU, pushed a character at a time a fortieth).

use std::sync::OnceLock;

use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::{Color, EcLevel, Version};

const EC_LEVEL: EcLevel = EcLevel::M;
const MASK: MaskPattern = MaskPattern::HorizontalLines;
const QUIET_ZONE: usize = 4;

/// What every code of one version shares.
struct Layout {
    width: usize,
    /// The code with every codeword bit clear, a row a number (bit `x` is column `x`, set
    /// when dark): function patterns, format information, and the mask alone over the data
    /// area (a clear bit shows the mask's colour).
    base: Vec<u128>,
    /// The module (row, column) of each codeword bit, in placement order: bit `k` is bit
    /// `7 - k % 8` of codeword `k / 8`, data codewords first, then error correction.
    positions: Vec<(u8, u8)>,
}

/// Rows are `u128`s: versions up to 27 (125 modules wide, 1,125 bytes at level M), far
/// beyond any wallet link.
const MAX_VERSION: i16 = 27;

impl Layout {
    /// Worked out with the crate's own drawing, so that placement stays exactly its own:
    /// the bit index of every data module is read back from one drawing per bit of the
    /// index (drawing `j` sets exactly the bits whose index has bit `j` set).
    fn new(version: Version) -> Option<Self> {
        let width = version.width();
        let mut functional = Canvas::new(version, EC_LEVEL);
        functional.draw_all_functional_patterns();
        let coordinates = || (0..width).flat_map(|y| (0..width).map(move |x| (x, y)));
        let data_modules = coordinates()
            .filter(|&(x, y)| functional.get(x, y) == Module::Empty)
            .count();
        // The bits after the last whole codeword are remainder bits: left clear.
        let bit_count = data_modules / 8 * 8;
        let index_bits = usize::BITS - bit_count.leading_zeros();
        let mut index_of = vec![0usize; usize::try_from(width).ok()?.pow(2)];
        let mut is_data = vec![false; index_of.len()];
        for j in 0..index_bits {
            let codewords: Vec<u8> = (0..bit_count / 8)
                .map(|byte| {
                    (0..8).fold(0u8, |acc, bit| {
                        let k = byte * 8 + bit;
                        acc | ((((k >> j) & 1) as u8) << (7 - bit))
                    })
                })
                .collect();
            let mut canvas = functional.clone();
            canvas.draw_data(&codewords, &[]);
            for (module, (x, y)) in coordinates().enumerate() {
                if let Module::Unmasked(color) = canvas.get(x, y) {
                    is_data[module] = true;
                    if color == Color::Dark {
                        index_of[module] |= 1 << j;
                    }
                }
            }
        }
        let width = usize::try_from(width).ok()?;
        let mut positions = vec![None; bit_count];
        for (module, &data) in is_data.iter().enumerate() {
            if data {
                let row_column = (
                    u8::try_from(module / width).ok()?,
                    u8::try_from(module % width).ok()?,
                );
                *positions.get_mut(index_of[module])? = Some(row_column);
            }
        }
        let positions = positions.into_iter().collect::<Option<Vec<_>>>()?;
        let mut blank = functional;
        blank.apply_mask(MASK);
        let base = blank
            .into_colors()
            .chunks_exact(width)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(_, c)| **c == Color::Dark)
                    .fold(0u128, |bits, (x, _)| bits | 1 << x)
            })
            .collect();
        Some(Self {
            width,
            base,
            positions,
        })
    }

    /// The layout of normal QR code `version` (1 to [`MAX_VERSION`]), worked out on first
    /// use; `None` for larger versions.
    fn of(version: Version) -> Option<&'static Self> {
        static LAYOUTS: [OnceLock<Option<Layout>>; MAX_VERSION as usize] =
            [const { OnceLock::new() }; MAX_VERSION as usize];
        let Version::Normal(number @ 1..=MAX_VERSION) = version else {
            return None;
        };
        let slot = LAYOUTS.get(usize::try_from(number).ok()?.checked_sub(1)?)?;
        slot.get_or_init(|| Self::new(version)).as_ref()
    }

    /// The rows of the code whose codewords are `data` then `ec`, as [`Layout::base`].
    fn rows(&self, data: &[u8], ec: &[u8]) -> Option<Vec<u128>> {
        let mut rows = self.base.clone();
        let mut positions = self.positions.chunks_exact(8);
        for &codeword in data.iter().chain(ec) {
            let bits = positions.next()?;
            for (bit, &(row, column)) in bits.iter().enumerate() {
                if codeword & (0x80 >> bit) != 0 {
                    *rows.get_mut(usize::from(row))? ^= 1 << column;
                }
            }
        }
        Some(rows)
    }
}

/// A QR code of `data` as an SVG document (quiet zone included), or `None` if the data is
/// too long for a QR code.
pub fn svg(data: &[u8]) -> Option<String> {
    let bits = qrcode::bits::encode_auto(data, EC_LEVEL).ok()?;
    let version = bits.version();
    let (codewords, ec) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC_LEVEL).ok()?;
    let layout = Layout::of(version)?;
    let rows = layout.rows(&codewords, &ec)?;
    let width = layout.width;
    let size = width + 2 * QUIET_ZONE;
    // Bytes, not a String: ASCII only, and pushing bytes is a third of the cost of pushing
    // chars and formatted numbers; checked as UTF-8 once at the end.
    let mut svg: Vec<u8> = Vec::with_capacity(width * width * 3 + 400);
    svg.extend_from_slice(br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 "#);
    push_number(&mut svg, size);
    svg.push(b' ');
    push_number(&mut svg, size);
    svg.extend_from_slice(br##"" shape-rendering="crispEdges" role="img" aria-label="QR code for the Cyberspace ID wallet"><rect width="100%" height="100%" fill="#fff"/><path stroke="#000" transform="translate(0 .5)" d=""##);
    // A run of dark modules in row y from x to x + n is the stroke from (x, y + ½) to
    // (x + n, y + ½), one module wide.
    for (y, &row) in rows.iter().enumerate() {
        let mut dark = row;
        while dark != 0 {
            let start = dark.trailing_zeros();
            // Rows are narrower than 128 bits, so every run ends inside the number.
            let run = (!(dark >> start)).trailing_zeros();
            dark &= !(((1u128 << run) - 1) << start);
            svg.push(b'M');
            push_number(&mut svg, start as usize + QUIET_ZONE);
            svg.push(b' ');
            push_number(&mut svg, y + QUIET_ZONE);
            svg.push(b'h');
            push_number(&mut svg, run as usize);
        }
    }
    svg.extend_from_slice(br#""/></svg>"#);
    String::from_utf8(svg).ok()
}

/// `n` in decimal, for coordinates and run lengths (at most 133: version 27 with its quiet
/// zone). `itoa`'s formatting into a buffer and copying out cost 2 µs more per code.
fn push_number(out: &mut Vec<u8>, n: usize) {
    let digit = |d: usize| b'0' + (d % 10) as u8;
    if n >= 100 {
        out.push(digit(n / 100));
    }
    if n >= 10 {
        out.push(digit(n / 10));
    }
    out.push(digit(n));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The modules the SVG paints dark, from its path's `M x y h n` segments.
    fn painted(drawing: &str) -> (usize, Vec<bool>) {
        let size: usize = drawing
            .split("viewBox=\"0 0 ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let path = drawing
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut dark = vec![false; size * size];
        for segment in path.split('M').skip(1) {
            let (start, run) = segment.split_once('h').unwrap();
            let (x, y) = start.split_once(' ').unwrap();
            let (x, y, run): (usize, usize, usize) =
                (x.parse().unwrap(), y.parse().unwrap(), run.parse().unwrap());
            for module in &mut dark[y * size + x..y * size + x + run] {
                assert!(!*module, "a module painted twice");
                *module = true;
            }
        }
        (size, dark)
    }

    /// The modules the crate itself draws for `data` with the same fixed mask.
    fn crate_modules(data: &[u8]) -> (usize, Vec<bool>) {
        let bits = qrcode::bits::encode_auto(data, EcLevel::M).unwrap();
        let version = bits.version();
        let (codewords, ec) =
            qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
        let mut canvas = Canvas::new(version, EcLevel::M);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&codewords, &ec);
        canvas.apply_mask(MaskPattern::HorizontalLines);
        let width = usize::try_from(version.width()).unwrap();
        let modules = canvas
            .into_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        (width, modules)
    }

    /// `dark` (a picture with its quiet zone) shows exactly `expected` inside a zone of four.
    fn assert_same_modules(size: usize, dark: &[bool], width: usize, expected: &[bool]) {
        assert_eq!(size, width + 8);
        for y in 0..size {
            for x in 0..size {
                let inside = (4..4 + width).contains(&x) && (4..4 + width).contains(&y);
                let want = inside && expected[(y - 4) * width + (x - 4)];
                assert_eq!(dark[y * size + x], want, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn every_version_paints_exactly_the_encoders_modules() {
        // Lengths from version 1 to past version 10, bytes that vary with the length.
        let mut versions = std::collections::BTreeSet::new();
        for length in (1..280).step_by(7) {
            let data: Vec<u8> = (0..length)
                .map(|i| b'!' + ((i * 31 + length) % 90) as u8)
                .collect();
            let (width, expected) = crate_modules(&data);
            versions.insert(width);
            let (size, dark) = painted(&svg(&data).unwrap());
            assert_same_modules(size, &dark, width, &expected);
        }
        assert!(versions.len() >= 10, "versions covered: {versions:?}");
    }

    #[test]
    fn paints_exactly_the_encoders_modules_and_scans_back() {
        let data =
            b"cyberid-wallet:?login=http://127.0.0.1:8080/login/--0k3Zx1abcdefghijklmnopqrstuv";
        let drawing = svg(data).unwrap();
        assert!(drawing.starts_with("<svg") && drawing.ends_with("</svg>"));
        let (size, dark) = painted(&drawing);
        let (width, expected) = crate_modules(data);
        assert_same_modules(size, &dark, width, &expected);

        // An independent decoder reads the data back from the picture, four pixels a module.
        let scale = 4;
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(size * scale, size * scale, |x, y| {
                if dark[(y / scale) * size + x / scale] {
                    0
                } else {
                    255
                }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content.as_bytes(), data);

        assert!(svg(&[b'x'; 4000]).is_none());
    }

    #[test]
    fn the_widest_supported_version_is_drawn_and_wider_ones_are_refused() {
        // 1,125 bytes is version 27 at level M (125 modules: rows close to 128 bits).
        let data: Vec<u8> = (0..1125).map(|i| b'a' + (i % 26) as u8).collect();
        let (width, expected) = crate_modules(&data);
        assert_eq!(width, 125);
        let (size, dark) = painted(&svg(&data).unwrap());
        assert_same_modules(size, &dark, width, &expected);
        // One byte more needs version 28, whose rows would not fit.
        assert!(svg(&[b'a'; 1126]).is_none());
    }
}
