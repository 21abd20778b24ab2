//! Rendering: report JSON, Markdown tables and PNG plots (plotters with a bundled font, so no
//! system fonts are needed).

use std::path::Path;
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::full_palette::{GREEN_700, RED_700};

use crate::data::{write_atomic, write_bytes_atomic};
use crate::error::{Error, Result};

/// DejaVu Sans (Bitstream Vera licence, data/fonts/DejaVuSans-LICENSE.txt), compiled in.
static FONT: &[u8] = include_bytes!("../data/fonts/DejaVuSans.ttf");
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 500;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid TrueType font; a failure here would be a build defect.
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            panic!("the bundled font data/fonts/DejaVuSans.ttf does not parse");
        }
    });
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot { path: path.to_path_buf(), message: e.to_string() }
}

/// Serialises `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Config(e.to_string()))?;
    write_bytes_atomic(path, &bytes)
}

/// Renders a PNG with `draw` into `path`, atomically (the temporary file keeps the `.png`
/// extension the encoder picks its format by).
fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    register_font();
    write_atomic(path, |tmp, _| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(&root).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))
    })
}

fn era_label(era: i32) -> String {
    format!("{}-{:02}-{:02}", era / 10_000, era / 100 % 100, era % 100)
}

/// Axes for a per-era series: one slot per era along x (labelled as dates), `values` (and 0) within y.
fn era_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    title: &str,
    eras: &[i32],
    values: &[f64],
    y_desc: &str,
) -> std::result::Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    let lo = values.iter().copied().fold(0.0f64, f64::min);
    let hi = values.iter().copied().fold(0.0f64, f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..eras.len().max(1) as f64, (lo - pad)..(hi + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|x| eras.get(*x as usize).map(|e| era_label(*e)).unwrap_or_default())
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Line plot of the cumulative per-era score.
pub fn cumulative_plot(path: &Path, title: &str, eras: &[i32], scores: &[f64]) -> Result<()> {
    let cum: Vec<f64> = scores
        .iter()
        .scan(0.0, |acc, s| {
            *acc += s;
            Some(*acc)
        })
        .collect();
    render_png(path, (WIDTH, HEIGHT), |root| {
        let mut chart = era_chart(root, title, eras, &cum, "cumulative numerai_corr")?;
        chart
            .draw_series(LineSeries::new(cum.iter().enumerate().map(|(i, v)| (i as f64, *v)), BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        let n = cum.len().max(1) as f64;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (n, 0.0)], BLACK.mix(0.4))).map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// One line per named series over the same eras, with a legend and a zero line.
pub fn lines_plot(path: &Path, title: &str, eras: &[i32], series: &[(String, Vec<f64>)], y_desc: &str) -> Result<()> {
    let all: Vec<f64> = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite()).collect();
    render_png(path, (WIDTH, HEIGHT), |root| {
        let mut chart = era_chart(root, title, eras, &all, y_desc)?;
        for (k, (name, values)) in series.iter().enumerate() {
            let color = Palette99::pick(k).stroke_width(2);
            chart
                .draw_series(LineSeries::new(values.iter().enumerate().map(|(i, v)| (i as f64, *v)), color))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], Palette99::pick(k).stroke_width(2)));
        }
        let n = eras.len().max(1) as f64;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (n, 0.0)], BLACK.mix(0.4))).map_err(|e| e.to_string())?;
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Bar plot of per-era scores (green positive, red negative).
pub fn per_era_plot(path: &Path, title: &str, eras: &[i32], scores: &[f64]) -> Result<()> {
    render_png(path, (WIDTH, HEIGHT), |root| {
        let mut chart = era_chart(root, title, eras, scores, "numerai_corr")?;
        era_bars(&mut chart, scores)
    })
}

/// Per-era bars on an existing chart (green positive, red negative).
fn era_bars(
    chart: &mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    scores: &[f64],
) -> std::result::Result<(), String> {
    chart
        .draw_series(scores.iter().enumerate().map(|(i, s)| {
            let color = if *s >= 0.0 { GREEN_700 } else { RED_700 };
            Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, *s)], color.filled())
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Two panels on one era axis: per-era corr bars above, churn against the era before below
/// with the stake-zeroing `limit` as a red line (eras without a churn value left blank).
pub fn corr_churn_plot(path: &Path, eras: &[i32], corr: &[f64], churn: &[(i32, f64)], limit: f64) -> Result<()> {
    let at: std::collections::HashMap<i32, f64> = churn.iter().copied().collect();
    let churn_by_era: Vec<f64> = eras.iter().map(|e| at.get(e).copied().unwrap_or(f64::NAN)).collect();
    let shown: Vec<f64> = churn_by_era.iter().copied().filter(|c| !c.is_nan()).chain([limit * 1.2]).collect();
    render_png(path, (WIDTH, HEIGHT * 2), |root| {
        let (top, bottom) = root.split_vertically(HEIGHT);
        let mut chart = era_chart(&top, "numerai_corr per era", eras, corr, "numerai_corr")?;
        era_bars(&mut chart, corr)?;
        let mut chart = era_chart(&bottom, "Churn against the era before", eras, &shown, "churn")?;
        let points = churn_by_era.iter().enumerate().filter(|(_, c)| !c.is_nan()).map(|(i, c)| (i as f64 + 0.5, *c));
        chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2))).map_err(|e| e.to_string())?;
        let n = eras.len().max(1) as f64;
        chart
            .draw_series(LineSeries::new([(0.0, limit), (n, limit)], RED.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Horizontal bar plot of the largest values, largest on top.
pub fn bar_plot(path: &Path, title: &str, x_desc: &str, labels: &[String], values: &[f64]) -> Result<()> {
    let n = labels.len().max(1);
    let hi = values.iter().copied().fold(0.0f64, f64::max).max(1e-12);
    let height = (120 + 24 * n as u32).max(300);
    render_png(path, (WIDTH, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(10)
            .build_cartesian_2d(0f64..hi * 1.3, 0f64..n as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc(x_desc)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(values.iter().enumerate().map(|(k, v)| {
                let y = (n - 1 - k) as f64;
                Rectangle::new([(0.0, y + 0.15), (*v, y + 0.85)], BLUE.mix(0.6).filled())
            }))
            .map_err(|e| e.to_string())?;
        // Each bar is labelled just right of its end.
        chart
            .draw_series(labels.iter().zip(values).enumerate().map(|(k, (label, v))| {
                let y = (n - 1 - k) as f64;
                Text::new(format!(" {label}"), (*v, y + 0.8), ("sans-serif", 14).into_font())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A Markdown table from a header and rows of cells.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}\n", header.join(" | "), header.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

/// An era as YYYY-MM-DD.
pub fn era_text(era: i32) -> String {
    era_label(era)
}
