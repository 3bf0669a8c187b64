//! QR codes for the login page, drawn per sign-in, so cheaply.
//!
//! `qrcode::QrCode::new` tries all eight masks and scores each (most of its time) and its
//! SVG renderer writes one rectangle per dark module. Here the same encoder and error
//! correction are used with one fixed mask — every mask is valid, the scoring only tunes
//! scanning margins — and each row's dark runs become one path segment each.

use std::fmt::Write;

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
    let mut path = String::with_capacity(width * width);
    for y in 0..width {
        let row = &modules[y * width..(y + 1) * width];
        let mut x = 0;
        while x < width {
            if row[x] {
                let start = x;
                while x < width && row[x] {
                    x += 1;
                }
                let _ = write!(
                    path,
                    "M{} {}h{}v1h-{}z",
                    start + quiet,
                    y + quiet,
                    x - start,
                    x - start
                );
            } else {
                x += 1;
            }
        }
    }
    Some(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" shape-rendering="crispEdges" role="img" aria-label="QR code for the Cyberspace ID wallet"><rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn same_modules_as_the_crate_with_the_same_mask() {
        // The crate's own encoder with the same fixed mask must give the same modules: the
        // path draws exactly the dark ones.
        let data =
            b"cyberid-wallet:?login=http%3A%2F%2F127.0.0.1%3A8080%2Flogin%2Fabcdefghijklmnopqrstuv";
        let drawing = svg(data).unwrap();
        let bits = qrcode::bits::encode_auto(data, EcLevel::M).unwrap();
        let version = bits.version();
        let (codewords, ec) =
            qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
        let mut canvas = Canvas::new(version, EcLevel::M);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&codewords, &ec);
        canvas.apply_mask(MaskPattern::HorizontalLines);
        let dark = canvas
            .into_colors()
            .into_iter()
            .filter(|c| *c == qrcode::Color::Dark)
            .count();
        let drawn: usize = drawing
            .split('M')
            .skip(1)
            .map(|segment| {
                segment
                    .split('h')
                    .nth(1)
                    .unwrap()
                    .split('v')
                    .next()
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        assert_eq!(drawn, dark);
        assert!(drawing.starts_with("<svg") && drawing.ends_with("</svg>"));
        assert!(svg(&[b'x'; 4000]).is_none());
    }
}
