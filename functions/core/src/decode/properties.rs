//! Property tests of the decoder: whatever the bytes, it returns rows or an
//! error and never panics; CSV written by the csv crate reads back field for
//! field.

use proptest::prelude::*;

use super::test_support::ds;
use super::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the bytes, decoding returns (rows or an error), never panics.
    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop_oneof![
            Just(Vec::new()),
            Just(b"CPF;PRIVATE;INCOMPLETO;DATA DA ULTIMA COMPRA;TICKET MEDIO;TICKET DA ULTIMA COMPRA;LOJA MAIS FREQUENTE;LOJA DA ULTIMA COMPRA\n".to_vec()),
            Just(b"PK\x03\x04".to_vec()),
            Just(b"\xFF\xFE".to_vec()),
        ],
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let path = std::env::temp_dir().join(format!(
            "xlport-decode-prop-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut bytes = prefix;
        bytes.extend(body);
        std::fs::write(&path, &bytes).unwrap();
        let _ = inspect(&path, &ds(), &Limits::default());
        let _ = decode_file(&path, &ds(), &Limits::default(), 0, &mut |row| {
            assert_eq!(row.cells.len(), 8);
            Ok(())
        });
        let _ = std::fs::remove_file(&path);
    }

    /// CSV written by the csv crate reads back field for field.
    #[test]
    fn csv_round_trips(
        rows in proptest::collection::vec(
            proptest::collection::vec("[ -~\n\u{e9}\u{c9}]{0,12}", 8),
            1..20,
        ),
        delimiter in prop_oneof![Just(b';'), Just(b','), Just(b'\t')],
    ) {
        let path = std::env::temp_dir().join(format!(
            "xlport-decode-csv-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let headers = ds().columns.iter().map(|c| c.header.clone()).collect::<Vec<_>>();
        let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_path(&path).unwrap();
        w.write_record(&headers).unwrap();
        for r in &rows {
            w.write_record(r).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let mut got = Vec::new();
        let info = decode_file(&path, &ds(), &Limits::default(), 0, &mut |row| {
            if let Some(counts) = row.field_count_error {
                return Err(format!("line {}: field counts {counts:?}", row.number));
            }
            got.push(row.cells.iter().map(|c| c.display_text().into_owned()).collect::<Vec<_>>());
            Ok(())
        });
        let _ = std::fs::remove_file(&path);
        let info = info.unwrap();
        prop_assert_eq!(info.format, FileFormat::Delimited { delimiter });
        let want: Vec<Vec<String>> = rows
            .into_iter()
            .filter(|r| !r.iter().all(|f| f.trim().is_empty()))
            .collect();
        prop_assert_eq!(got, want);
    }
}
