//! `ubootctl inspect`: decode an image into one report, printed as text or as JSON.
//!
//! The report is built once from `imx-hab`'s typed views ([`model`]) and rendered by
//! [`text`] or serialised as it is, so both outputs always say the same thing.

mod model;
mod text;

use std::path::Path;

use boards::Board;
use imx_hab::image::Image;

use crate::exit::Failure;
use crate::output::{out, outln};

pub use model::Report;

/// Reads `path`, decodes it with `board`'s media layout and prints the report.
pub fn run(path: &Path, board: &Board, json: bool) -> Result<(), Failure> {
    let bytes = crate::image_file::read_image(path, &board.media)?;
    let image = Image::parse(&bytes, &board.media).map_err(|error| Failure::Invalid {
        path: path.to_owned(),
        error,
    })?;
    let report = Report::new(&path.display().to_string(), bytes.len() as u64, &image);
    if json {
        let s =
            serde_json::to_string_pretty(&report).expect("the report serialises: plain data only");
        outln!("{s}");
    } else {
        out!("{}", text::render(&report));
    }
    Ok(())
}
