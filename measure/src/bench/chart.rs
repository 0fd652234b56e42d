//! The two plots of docs/performance.md (cold start, unary latency):
//! horizontal grouped bar charts on a log scale, drawn with plotters' SVG
//! backend. Text is written as SVG `<text>` (no font files are read), so the
//! output is the same on every machine.

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One bar group: a label and the plaintext and AutoMTLS values.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) off: Option<f64>,
    pub(crate) auto: Option<f64>,
}

const WIDTH: u32 = 780;
const ROW_PX: u32 = 30;
const LABEL_AREA: u32 = 180;
const TLS_OFF: RGBColor = RGBColor(0x8d, 0xa0, 0xcb);
const AUTO_MTLS: RGBColor = RGBColor(0xfc, 0x8d, 0x62);
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);
const FONT: &str = "sans-serif";

/// Whole decades around the positive values: `(10^lo, 10^hi)`.
fn decades(rows: &[Row]) -> (f64, f64) {
    let values = rows
        .iter()
        .flat_map(|r| [r.off, r.auto])
        .flatten()
        .filter(|v| *v > 0.0);
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = (min.log10().floor(), max.log10().ceil());
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    (10f64.powf(lo), 10f64.powf(hi))
}

/// A bar's value label: two decimals under 10, one under 100, none above.
pub(crate) fn fmt_value(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn fmt_tick(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The chart as a standalone SVG document.
pub(crate) fn bar_chart(title: &str, unit: &str, rows: &[Row]) -> anyhow::Result<String> {
    let mut svg = String::new();
    let height = 110 + ROW_PX * u32::try_from(rows.len()).unwrap_or(u32::MAX / ROW_PX);
    draw(&mut svg, (WIDTH, height), title, unit, rows)
        .map_err(|err| anyhow::anyhow!("drawing the {title:?} chart: {err}"))?;
    Ok(svg)
}

fn draw(
    svg: &mut String,
    size: (u32, u32),
    title: &str,
    unit: &str,
    rows: &[Row],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (lo, hi) = decades(rows);
    let n = rows.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 15).into_font().style(FontStyle::Bold))
        .margin(10)
        .margin_right(60)
        .x_label_area_size(40)
        .y_label_area_size(LABEL_AREA)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..n.max(1.0))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .y_labels(0)
        .x_label_formatter(&|v| fmt_tick(*v))
        .x_label_style((FONT, 12).into_font().color(&GREY))
        .x_desc(format!("log scale, {unit}"))
        .axis_desc_style((FONT, 12).into_font().color(&GREY))
        .light_line_style(RGBColor(0xe3, 0xe3, 0xe3))
        .bold_line_style(RGBColor(0xbb, 0xbb, 0xbb))
        .draw()?;

    let label = (FONT, 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    let value = (FONT, 10)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let missing = (FONT, 10)
        .into_font()
        .color(&RGBColor(0x99, 0x99, 0x99))
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, row) in rows.iter().enumerate() {
        // Row i fills [n-i-1, n-i] from the top: TLS off above AutoMTLS.
        let top = n - i as f64;
        chart.draw_series(std::iter::once(
            EmptyElement::at((lo, top - 0.5)) + Text::new(row.label.clone(), (-8, 0), &label),
        ))?;
        for (j, (v, color)) in [(row.off, TLS_OFF), (row.auto, AUTO_MTLS)]
            .into_iter()
            .enumerate()
        {
            let y1 = top - 0.12 - 0.38 * j as f64;
            let y0 = y1 - 0.36;
            let mid = (y0 + y1) / 2.0;
            match v.filter(|v| *v > 0.0) {
                Some(v) => {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(lo, y0), (v, y1)],
                        color.filled(),
                    )))?;
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((v, mid)) + Text::new(fmt_value(v), (4, 0), &value),
                    ))?;
                }
                None => {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((lo, mid)) + Text::new("n/a", (4, 0), &missing),
                    ))?;
                }
            }
        }
    }
    // The legend: one swatch per TLS mode.
    for (name, color) in [("TLS off", TLS_OFF), ("AutoMTLS", AUTO_MTLS)] {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(0xbb, 0xbb, 0xbb))
        .label_font((FONT, 12))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_labels_values_and_missing_bars() {
        let svg = bar_chart(
            "t",
            "ms",
            &[
                Row {
                    label: "a<b".into(),
                    off: None,
                    auto: Some(3.0),
                },
                Row {
                    label: "rust → go".into(),
                    off: Some(120.0),
                    auto: Some(0.5),
                },
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains("rust → go"));
        assert!(svg.contains("n/a"));
        for text in [
            "3.00",
            "120",
            "0.50",
            "TLS off",
            "AutoMTLS",
            "log scale, ms",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn decades_cover_the_values() {
        let row = |off, auto| Row {
            label: String::new(),
            off,
            auto,
        };
        assert_eq!(decades(&[row(Some(3.0), Some(250.0))]), (1.0, 1000.0));
        assert_eq!(decades(&[row(None, None)]), (1.0, 10.0));
    }
}
