//! Rooms a newcomer can read: no function over [`MAX_FN_LINES`] lines and no source file
//! over [`MAX_FILE_LINES`] lines, outside generated code and the short allow-list below.

use std::path::Path;

use syn::visit::Visit;

/// The longest function, from its `fn` to its closing brace.
const MAX_FN_LINES: usize = 150;
/// The longest source file.
const MAX_FILE_LINES: usize = 800;

/// Generated files, not written by hand.
const GENERATED: &[&str] = &["crates/db/src/schema.rs"];

/// Files allowed past [`MAX_FILE_LINES`], each with its reason. Keep it short.
const LONG_FILES: &[(&str, &str)] = &[];

/// Functions (`path`, `name`) allowed past [`MAX_FN_LINES`], each with its reason.
const LONG_FNS: &[(&str, &str, &str)] = &[];

/// Each function of `source` with its first line and its length in lines. Functions
/// written inside macro invocations (`proptest! { … }`) are not seen.
fn function_lengths(source: &str) -> syn::Result<Vec<(String, usize, usize)>> {
    struct Lengths(Vec<(String, usize, usize)>);
    impl Lengths {
        fn record(&mut self, sig: &syn::Signature, block: &syn::Block) {
            let first = sig.fn_token.span.start().line;
            let last = block.brace_token.span.close().start().line;
            self.0
                .push((sig.ident.to_string(), first, last.saturating_sub(first) + 1));
        }
    }
    impl<'ast> Visit<'ast> for Lengths {
        fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
            self.record(&item.sig, &item.block);
            syn::visit::visit_item_fn(self, item);
        }
        fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
            self.record(&item.sig, &item.block);
            syn::visit::visit_impl_item_fn(self, item);
        }
        fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
            if let Some(block) = &item.default {
                self.record(&item.sig, block);
            }
            syn::visit::visit_trait_item_fn(self, item);
        }
    }
    let file = syn::parse_file(source)?;
    let mut lengths = Lengths(Vec::new());
    lengths.visit_file(&file);
    Ok(lengths.0)
}

/// Every hand-written `.rs` file of crates/ and bins/, relative to the workspace root.
fn sources() -> Vec<(String, String)> {
    let root = super::workspace_root();
    ["crates", "bins"]
        .iter()
        .flat_map(|dir| super::rust_files(&root.join(dir)))
        .filter_map(|file| {
            let relative = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/");
            if GENERATED.contains(&relative.as_str()) {
                return None;
            }
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            Some((relative, text))
        })
        .collect()
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES && !LONG_FILES.iter().any(|(p, _)| *p == path) {
            found.push(format!("{path}: {lines} lines"));
        }
    }
    assert!(
        found.is_empty(),
        "files over {MAX_FILE_LINES} lines (split them along their seams):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let lengths = function_lengths(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (name, line, lines) in lengths {
            let allowed = LONG_FNS.iter().any(|(p, n, _)| *p == path && *n == name);
            if lines > MAX_FN_LINES && !allowed {
                found.push(format!("{path}:{line} fn {name}: {lines} lines"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "functions over {MAX_FN_LINES} lines (one function per step or per case):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_allow_lists_name_what_exists_and_say_why() {
    let root = super::workspace_root();
    for (path, reason) in LONG_FILES {
        assert!(
            Path::new(&root.join(path)).exists(),
            "{path} is allowed but gone"
        );
        assert!(!reason.is_empty(), "{path} needs a reason");
    }
    for (path, name, reason) in LONG_FNS {
        let text = std::fs::read_to_string(root.join(path)).expect("an allowed file exists");
        let lengths = function_lengths(&text).expect("it parses");
        assert!(
            lengths
                .iter()
                .any(|(n, _, lines)| n == name && *lines > MAX_FN_LINES),
            "{path} fn {name} is allowed but no longer long: drop it from the list"
        );
        assert!(!reason.is_empty(), "{path} fn {name} needs a reason");
    }
    assert!(
        LONG_FILES.len() + LONG_FNS.len() <= 10,
        "the allow-list is not short"
    );
}

#[test]
fn the_measure_counts_from_fn_to_the_closing_brace() {
    let body = "    let x = 1;\n".repeat(3);
    let source =
        format!("/// doc\nfn short() {{\n{body}}}\nimpl A {{\n    fn method(&self) {{}}\n}}\n");
    let lengths = function_lengths(&source).expect("it parses");
    assert_eq!(
        lengths,
        vec![("short".to_owned(), 2, 5), ("method".to_owned(), 8, 1)]
    );
}
