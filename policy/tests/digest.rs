//! Tamper evidence: every file the writer makes records a content digest that the loader
//! checks, so a changed byte anywhere is refused; files from before digests still load.

mod common;

use common::temp;
use haca_policy::{Architecture, Policy, PolicyError};

#[test]
fn a_written_file_carries_a_digest_that_load_verifies() {
    let p = Policy::random(Architecture::default(), 3);
    assert_eq!(p.digest(), None, "not read from a file");
    for (name, int8) in [("f32.safetensors", false), ("int8.safetensors", true)] {
        let path = temp(name);
        if int8 {
            p.save_int8(&path).unwrap();
        } else {
            p.save(&path).unwrap();
        }
        let back = Policy::load(&path).unwrap();
        let d = back.digest().expect("verified digest");
        assert!(d.starts_with("sha256:") && d.len() == 7 + 64, "{d}");
        // Saving what was loaded gives the same content, so the same digest.
        let again = temp(&format!("again-{name}"));
        back.save(&again).unwrap();
        if !int8 {
            assert_eq!(Policy::load(&again).unwrap().digest(), Some(d));
        }
    }
}

#[test]
fn any_changed_byte_is_refused() {
    let path = temp("good.safetensors");
    Policy::random(Architecture::default(), 4)
        .save(&path)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let bad = temp("flipped.safetensors");
    let mut digest_errors = 0;
    let positions = (8..header).chain((header..bytes.len()).step_by(13));
    for i in positions {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        std::fs::write(&bad, &b).unwrap();
        match Policy::load(&bad) {
            Ok(_) => panic!("byte {i} of {} changed, yet the file loaded", bytes.len()),
            Err(e) => {
                assert!(e.to_string().contains("flipped.safetensors"), "{e}");
                digest_errors += matches!(e, PolicyError::Digest { .. }) as usize;
            }
        }
    }
    // Every flip in the tensor data is caught by the digest (header flips may break the JSON
    // first).
    assert!(
        digest_errors >= (bytes.len() - header) / 13,
        "{digest_errors}"
    );
    let mut b = bytes.clone();
    let last = b.len() - 1;
    b[last] ^= 0x80;
    std::fs::write(&bad, &b).unwrap();
    let e = Policy::load(&bad).unwrap_err();
    assert!(
        e.to_string().contains("content digest does not match")
            && e.to_string().contains("export it again"),
        "{e}"
    );
}

#[test]
fn a_file_from_before_digests_loads_unverified() {
    let p = Policy::random(Architecture::default(), 5);
    let mut meta = p.metadata();
    assert!(!meta.contains_key("digest"));
    let views: Vec<(String, safetensors::tensor::TensorView)> = p
        .tensors()
        .iter()
        .map(|(n, s, d)| {
            let bytes: &'static [u8] = Box::leak(
                d.iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into_boxed_slice(),
            );
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), bytes)
                    .unwrap(),
            )
        })
        .collect();
    // As the current version, a missing digest is damage.
    let path = temp("stripped.safetensors");
    std::fs::write(
        &path,
        safetensors::serialize(views.clone(), &Some(meta.clone())).unwrap(),
    )
    .unwrap();
    let e = Policy::load(&path).unwrap_err();
    assert!(
        matches!(&e, PolicyError::Metadata { key, .. } if key == "digest"),
        "{e}"
    );
    // As version 1, it is a file from before digests.
    meta.insert("format_version".into(), "1".into());
    let path = temp("legacy.safetensors");
    std::fs::write(&path, safetensors::serialize(views, &Some(meta)).unwrap()).unwrap();
    let back = Policy::load(&path).unwrap();
    assert_eq!(back.digest(), None);
    assert_eq!(back.tensors(), p.tensors());
    // Saving it stamps it with the current version and a digest.
    let stamped = temp("stamped.safetensors");
    back.save(&stamped).unwrap();
    assert!(Policy::load(&stamped).unwrap().digest().is_some());
}
