//! Every kernel's Params block mirrors the WGSL struct of the same name, field by field (names,
//! types, order), and its entry point exists in its file: a field added on one side only, or
//! two swapped, would pass values to the wrong place. wgpu checks the bindings' access when it
//! builds the pipelines (every GPU test binary does so at start).

use dale::backend::kernels;

/// The fields of `struct name { ... }` in a WGSL source, as (field, type), comments dropped.
fn wgsl_struct(source: &str, name: &str) -> Option<Vec<(String, String)>> {
    let start = source.find(&format!("struct {name} {{"))?;
    let body = &source[start..];
    let body = &body[body.find('{')? + 1..body.find('}')?];
    Some(
        body.lines()
            .map(|l| l.split("//").next().unwrap_or("").trim())
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (field, ty) = f.split_once(':').expect("field: type");
                (field.trim().to_string(), ty.trim().to_string())
            })
            .collect(),
    )
}

#[test]
fn every_kernels_params_mirror_its_wgsl_struct_and_its_entry_exists() {
    let mut checked = 0;
    for k in kernels() {
        let fields = wgsl_struct(k.source, k.params)
            .unwrap_or_else(|| panic!("{}: no struct {} in {}", k.entry, k.params, k.file));
        let rust: Vec<(String, String)> = k
            .params_fields
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        assert_eq!(rust, fields, "{}: Rust {} against WGSL", k.entry, k.params);
        assert!(
            k.source.contains(&format!("var<uniform> "))
                && k.source.contains(&format!(": {};", k.params)),
            "{}: no uniform of type {} in {}",
            k.entry,
            k.params,
            k.file
        );
        assert!(
            k.source.contains(&format!("fn {}(", k.entry)),
            "{}: no entry point in {}",
            k.entry,
            k.file
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} kernels listed");
}

#[test]
fn the_parser_reads_fields_with_comments() {
    let src = "struct P {\n    a: u32, // one\n    b: f32,\n}\n";
    assert_eq!(
        wgsl_struct(src, "P").unwrap(),
        vec![("a".into(), "u32".into()), ("b".into(), "f32".into())]
    );
}
