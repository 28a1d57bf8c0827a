//! A small SVG line chart on log-log axes, written by hand: the bench's figures span three
//! decades in both directions (1 to 1,000 units, milliseconds to minutes), and a plotting
//! crate would be the largest dependency of the workspace for two pictures.

use std::fmt::Write as _;

/// One line: its points (x, median y, y min, y max), drawn solid or dashed.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub dashed: bool,
    pub points: Vec<(f64, f64, f64, f64)>,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub note: String,
    pub series: Vec<Series>,
}

/// Colours that stay apart for the colour-blind (Okabe–Ito).
pub const COLORS: [&str; 6] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

const W: f64 = 760.0;
const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 64.0;

/// The decades that hold every value: (lowest power of ten, highest).
fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (lo, hi) =
        values.filter(|v| v.is_finite() && *v > 0.0).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0, 1);
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (a, b.max(a + 1))
}

/// Maps a value to a pixel along one log axis.
struct Axis {
    lo: i32,
    hi: i32,
    from: f64,
    to: f64,
}

impl Axis {
    fn at(&self, v: f64) -> f64 {
        let t = (v.log10() - f64::from(self.lo)) / f64::from(self.hi - self.lo);
        self.from + t * (self.to - self.from)
    }
}

fn label(power: i32) -> String {
    number(10f64.powi(power))
}

/// A tick's value, thousands grouped as the report's text writes them.
fn number(v: f64) -> String {
    if v < 1.0 {
        return format!("{v}");
    }
    let s = format!("{v:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn grid(o: &mut String, x: &Axis, y: &Axis) {
    for p in x.lo..=x.hi {
        let px = x.at(10f64.powi(p));
        let _ = writeln!(o, r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#ccc"/>"##, y.to, y.from);
        let _ = writeln!(o, r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, y.from + 18.0, label(p));
        for m in 2..10 {
            let v = f64::from(m) * 10f64.powi(p);
            if p < x.hi {
                let px = x.at(v);
                let _ = writeln!(
                    o,
                    r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#eee"/>"##,
                    y.to, y.from
                );
            }
        }
    }
    for p in y.lo..=y.hi {
        let py = y.at(10f64.powi(p));
        let _ = writeln!(o, r##"<line x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ccc"/>"##, x.from, x.to);
        let _ =
            writeln!(o, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, x.from - 6.0, py + 4.0, label(p));
        for m in 2..10 {
            if p < y.hi {
                let v = f64::from(m) * 10f64.powi(p);
                let py = y.at(v);
                let _ = writeln!(
                    o,
                    r##"<line x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#eee"/>"##,
                    x.from, x.to
                );
                // 2 and 5 labelled too: on a log axis a value between decades is otherwise a guess.
                if m == 2 || m == 5 {
                    let _ = writeln!(
                        o,
                        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#777">{}</text>"##,
                        x.from - 6.0,
                        py + 4.0,
                        number(v)
                    );
                }
            }
        }
    }
}

fn series(o: &mut String, s: &Series, x: &Axis, y: &Axis) {
    let pts: Vec<(f64, f64, f64, f64)> =
        s.points.iter().copied().filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.1.is_finite()).collect();
    let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
    let line: Vec<String> = pts.iter().map(|p| format!("{:.1},{:.1}", x.at(p.0), y.at(p.1))).collect();
    let _ = writeln!(
        o,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
        line.join(" "),
        s.color
    );
    for &(px, med, lo, hi) in &pts {
        let (cx, cy) = (x.at(px), y.at(med));
        // The spread of the runs (min–max), when there was more than one.
        if lo > 0.0 && hi > lo {
            let _ = writeln!(
                o,
                r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="{}" stroke-width="1"/>"#,
                y.at(lo),
                y.at(hi),
                s.color
            );
        }
        let fill = if s.dashed { "white" } else { s.color };
        let _ = writeln!(
            o,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="{fill}" stroke="{}" stroke-width="1.5"/>"#,
            s.color
        );
    }
}

fn legend(o: &mut String, c: &Chart) {
    let x0 = W - RIGHT + 16.0;
    for (i, s) in c.series.iter().enumerate() {
        let y = TOP + 8.0 + 20.0 * i as f64;
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            o,
            r#"<line x1="{x0:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2"{dash}/>"#,
            x0 + 26.0,
            s.color
        );
        let _ = writeln!(o, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, x0 + 32.0, y + 4.0, esc(&s.name));
    }
}

/// The chart as a standalone SVG document.
pub fn svg(c: &Chart) -> String {
    let (xlo, xhi) = decades(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (ylo, yhi) = decades(c.series.iter().flat_map(|s| s.points.iter().flat_map(|p| [p.1, p.2, p.3])));
    let x = Axis { lo: xlo, hi: xhi, from: LEFT, to: W - RIGHT };
    let y = Axis { lo: ylo, hi: yhi, from: H - BOTTOM, to: TOP };
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(o, r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#, esc(&c.title));
    grid(&mut o, &x, &y);
    for s in &c.series {
        series(&mut o, s, &x, &y);
    }
    legend(&mut o, c);
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (x.from + x.to) / 2.0,
        H - BOTTOM + 40.0,
        esc(&c.x_label)
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (y.from + y.to) / 2.0,
        esc(&c.y_label)
    );
    let _ = writeln!(o, r##"<text x="{LEFT}" y="{:.1}" font-size="11" fill="#555">{}</text>"##, H - 8.0, esc(&c.note));
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_cover_every_value_and_at_least_one() {
        assert_eq!(decades([1.0, 1000.0].into_iter()), (0, 3));
        assert_eq!(decades([15.0, 27.0].into_iter()), (1, 2));
        assert_eq!(decades([10.0].into_iter()), (1, 2));
        assert_eq!(decades(std::iter::empty()), (0, 1));
    }

    #[test]
    fn labels_group_thousands() {
        assert_eq!(label(0), "1");
        assert_eq!(label(3), "1,000");
        assert_eq!(label(5), "100,000");
        assert_eq!(label(-1), "0.1");
        assert_eq!(number(5000.0), "5,000");
        assert_eq!(number(20.0), "20");
    }

    #[test]
    fn a_chart_is_one_svg_document_with_every_series() {
        let c = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            note: "a < b".into(),
            series: vec![Series {
                name: "s".into(),
                color: COLORS[0],
                dashed: true,
                points: vec![(1.0, 10.0, 9.0, 12.0), (100.0, 50.0, 50.0, 50.0)],
            }],
        };
        let s = svg(&c);
        assert!(s.starts_with("<svg ") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<polyline").count(), 1);
        assert_eq!(s.matches("<circle").count(), 2);
        assert!(s.contains("a &lt; b"));
    }
}
