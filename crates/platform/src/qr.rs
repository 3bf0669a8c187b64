//! QR codes for the login page, drawn per sign-in, so cheaply.
//!
//! `qrcode::QrCode::new` tries all eight masks and scores each (most of its time) and its
//! SVG renderer writes one rectangle per dark module. Here the same encoder and error
//! correction are used with one fixed mask — every mask is valid, the scoring only tunes
//! scanning margins — and each row's dark runs become one stroked path segment each, the
//! numbers written with `itoa` (through `core::fmt` they were a twentieth of a sign-in's
//! CPU, pushed a character at a time a fortieth).

use qrcode::EcLevel;
use qrcode::canvas::{Canvas, MaskPattern};

/// A QR code of `data` as an SVG document (quiet zone included), or `None` if the data is
/// too long for a QR code.
pub fn svg(data: &[u8]) -> Option<String> {
    let ec_level = EcLevel::M;
    let bits = qrcode::bits::encode_auto(data, ec_level).ok()?;
    let version = bits.version();
    let (codewords, ec) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, ec_level).ok()?;
    let mut canvas = Canvas::new(version, ec_level);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&codewords, &ec);
    canvas.apply_mask(MaskPattern::HorizontalLines);
    let modules: Vec<bool> = canvas
        .into_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    let width = usize::try_from(version.width()).ok()?;
    let quiet = 4;
    let size = width + 2 * quiet;
    let mut svg = String::with_capacity(width * width + 400);
    let mut number = itoa::Buffer::new();
    svg.push_str(r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 "#);
    svg.push_str(number.format(size));
    svg.push(' ');
    svg.push_str(number.format(size));
    svg.push_str(r##"" shape-rendering="crispEdges" role="img" aria-label="QR code for the Cyberspace ID wallet"><rect width="100%" height="100%" fill="#fff"/><path stroke="#000" transform="translate(0 .5)" d=""##);
    // A run of dark modules in row y from x to x + n is the stroke from (x, y + ½) to
    // (x + n, y + ½), one module wide.
    for (y, row) in modules.chunks_exact(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] {
                let start = x;
                while x < width && row[x] {
                    x += 1;
                }
                svg.push('M');
                svg.push_str(number.format(start + quiet));
                svg.push(' ');
                svg.push_str(number.format(y + quiet));
                svg.push('h');
                svg.push_str(number.format(x - start));
            } else {
                x += 1;
            }
        }
    }
    svg.push_str(r#""/></svg>"#);
    Some(svg)
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

    #[test]
    fn paints_exactly_the_encoders_modules_and_scans_back() {
        let data =
            b"cyberid-wallet:?login=http://127.0.0.1:8080/login/--0k3Zx1abcdefghijklmnopqrstuv";
        let drawing = svg(data).unwrap();
        assert!(drawing.starts_with("<svg") && drawing.ends_with("</svg>"));
        let (size, dark) = painted(&drawing);

        // The crate's own encoder with the same fixed mask gives the same modules, inside
        // a quiet zone of four.
        let bits = qrcode::bits::encode_auto(data, EcLevel::M).unwrap();
        let version = bits.version();
        let (codewords, ec) =
            qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
        let mut canvas = Canvas::new(version, EcLevel::M);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&codewords, &ec);
        canvas.apply_mask(MaskPattern::HorizontalLines);
        let width = usize::try_from(version.width()).unwrap();
        assert_eq!(size, width + 8);
        let expected: Vec<bool> = canvas
            .into_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        for y in 0..size {
            for x in 0..size {
                let inside = (4..4 + width).contains(&x) && (4..4 + width).contains(&y);
                let want = inside && expected[(y - 4) * width + (x - 4)];
                assert_eq!(dark[y * size + x], want, "module ({x}, {y})");
            }
        }

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
}
