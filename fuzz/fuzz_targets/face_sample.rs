//! Face samples (`sample_from_base64`, `decode_sample`): what an enrolment and an L3
//! approval send, and what `--face FILE` reads. An accepted sample is 128 bytes that
//! encode back to the text sent (in both forms); its match score against a stored template
//! is a cosine, finite and within [-1, 1]; a sample matches itself unless it is all zeros,
//! which matches nothing.
#![no_main]

use cyberid_domain::FaceTemplate;
use cyberid_registry::face::{
    CosineFaceMatcher, FaceMatcher, decode_sample, encode_sample, sample_from_base64,
    sample_to_base64,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sample) = sample_from_base64(text) {
        assert_eq!(sample_to_base64(&sample), text.trim());
        check_scores(&sample);
    }
    if let Ok(sample) = decode_sample(text) {
        assert_eq!(decode_sample(&encode_sample(&sample)), Ok(sample.clone()));
        check_scores(&sample);
    }
    if let Some(bytes) = data.get(..128) {
        let template = FaceTemplate::from_bytes(bytes).expect("128 bytes");
        assert_eq!(
            sample_from_base64(&sample_to_base64(&template)),
            Ok(template)
        );
    }
});

fn check_scores(sample: &FaceTemplate) {
    let matcher = CosineFaceMatcher::default();
    let stored = FaceTemplate::from_components(std::array::from_fn(|i| (i as i8).wrapping_mul(37)));
    for (a, b) in [(&stored, sample), (sample, &stored), (sample, sample)] {
        let score = matcher.score(a, b);
        assert!(
            score.is_finite() && (-1.0001..=1.0001).contains(&score),
            "{score}"
        );
    }
    let zero = sample.components().iter().all(|&c| c == 0);
    assert_eq!(matcher.matches(sample, sample), !zero);
}
