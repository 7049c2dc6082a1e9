//! PNG plots. The font is embedded (DejaVu Sans), so plots render on machines with no fontconfig.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::output::write_atomic;
use crate::error::DaleError;

pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// A shaded band (x, low, high) behind the line, in its colour: a spread over runs.
    pub band: Vec<(f64, f64, f64)>,
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// A logarithmic y axis (for ratios spanning decades); values <= 0 are left out.
    pub log_y: bool,
    pub marks: Marks,
}

/// How a panel draws its series' points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marks {
    Lines,
    /// A dot per point: a spike raster.
    Dots,
    /// A bar from 0 per point, as wide as the closest points are apart: a histogram.
    Bars,
}

const WIDTH: u32 = 1000;
const PANEL_HEIGHT: u32 = 400;

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The embedded font is valid TrueType; failure here would be a packaging bug.
            let _ = plotters::style::register_font("sans-serif", style, dejavu::sans::regular());
        }
    });
}

/// Panels stacked vertically, each a set of line series; written atomically to `path`.
pub fn line_panels(path: &Path, panels: &[Panel]) -> Result<(), DaleError> {
    register_font();
    let height = PANEL_HEIGHT * panels.len().max(1) as u32;
    let mut pixels = vec![0u8; (WIDTH * height * 3) as usize];
    let draw_err = |e: String| DaleError::Write {
        path: path.into(),
        source: std::io::Error::other(e),
    };
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            let band_edges = panel
                .series
                .iter()
                .flat_map(|s| s.band.iter().flat_map(|(x, lo, hi)| [(*x, *lo), (*x, *hi)]));
            for (x, y) in panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().copied())
                .chain(band_edges)
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!panel.log_y || *y > 0.0))
            {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if x0 > x1 {
                (x0, x1, y0, y1) = (0.0, 1.0, 0.1, 1.0);
            }
            if panel.marks == Marks::Bars {
                // Bars stand on 0 and reach half a bar beyond the outer points.
                let half = bar_width(panel) / 2.0;
                (x0, x1, y0) = (x0 - half, x1 + half, y0.min(0.0));
            }
            let builder = || {
                let mut b = ChartBuilder::on(area);
                b.caption(&panel.title, ("sans-serif", 20))
                    .margin(12)
                    .x_label_area_size(36)
                    .y_label_area_size(64);
                b
            };
            let x_range = x0..x1.max(x0 + 1e-9);
            if panel.log_y {
                let chart = builder()
                    .build_cartesian_2d(x_range, (y0 / 1.1..y1 * 1.1).log_scale())
                    .map_err(|e| draw_err(e.to_string()))?;
                draw_series(chart, panel).map_err(draw_err)?;
            } else {
                let pad = ((y1 - y0) * 0.05).max(1e-6);
                let chart = builder()
                    .build_cartesian_2d(x_range, (y0 - pad)..(y1 + pad))
                    .map_err(|e| draw_err(e.to_string()))?;
                draw_series(chart, panel).map_err(draw_err)?;
            }
        }
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, WIDTH, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| draw_err(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| draw_err(e.to_string()))?;
    }
    write_atomic(path, &png)
}

/// The mesh, each series' band and line, and the legend of one panel.
fn draw_series<'a, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    panel: &Panel,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style(("sans-serif", 14));
    if panel.log_y {
        // Light lines bunch up below each decade on a log axis.
        mesh.light_line_style(TRANSPARENT);
    }
    mesh.draw().map_err(e)?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if !s.band.is_empty() {
            let outline: Vec<(f64, f64)> = s
                .band
                .iter()
                .map(|(x, _, hi)| (*x, *hi))
                .chain(s.band.iter().rev().map(|(x, lo, _)| (*x, *lo)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.2).filled(),
                )))
                .map_err(e)?;
        }
        let legend = match panel.marks {
            Marks::Lines => chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(1),
                ))
                .map_err(e)?,
            Marks::Dots => chart
                .draw_series(s.points.iter().map(|p| Circle::new(*p, 1, color.filled())))
                .map_err(e)?,
            Marks::Bars => {
                let half = bar_width(panel) / 2.0;
                chart
                    .draw_series(s.points.iter().map(|(x, y)| {
                        Rectangle::new([(x - half, 0.0), (x + half, *y)], color.mix(0.7).filled())
                    }))
                    .map_err(e)?
            }
        };
        legend
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    if panel.series.len() <= 8 && panel.series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// The width of a panel's bars: the least distance between its points' x (1 for one point).
fn bar_width(panel: &Panel) -> f64 {
    let mut xs: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .collect();
    xs.sort_by(f64::total_cmp);
    let least = xs
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    if least.is_finite() {
        least
    } else {
        1.0
    }
}
