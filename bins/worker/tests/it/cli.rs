//! `haven-worker --help` and `--version` answer and exit 0 without reading the configuration,
//! connecting to anything or starting work.

#[test]
fn help_and_version_answer_without_side_effects() {
    haven_testkit::assert_answers_help_and_version(
        env!("CARGO_BIN_EXE_haven-worker"),
        "haven-worker",
    );
}
