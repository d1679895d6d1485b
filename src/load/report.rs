//! What a load run reports: per step (one rate) its outcomes, throughput, the percentiles of each
//! latency and the bench's own CPU time; the knee when `--find-knee` looked for it. Written as
//! JSON ([`LoadReport`], which reads back) and as one self-contained HTML page with two SVG plots
//! per stage set: latency over time and latency distribution.

use super::plan::{Arrivals, LoadOptions};
use super::stats::{Percentiles, Point, Stage, Stats};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What the HTML plots of a stage: its latency-over-time points and its cumulative distribution
/// (latency ms, share of calls).
pub type Plot = (Vec<Point>, Vec<(f64, f64)>);

/// The results of one step.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StepReport {
    /// Calls per second asked for.
    pub rate: f64,
    /// Calls placed.
    pub offered: u64,
    /// Calls that ended (every placed call ends, at the latest at its deadline).
    pub finished: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Failures per call finished.
    pub failure_share: f64,
    /// Calls by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Percentiles of each stage that at least one call reached, by stage name.
    pub latency_ms: BTreeMap<String, Percentiles>,
    /// Calls answered or as expected per second of the step's wall time.
    pub throughput_cps: f64,
    /// From the first INVITE to the last call's end.
    pub wall_s: f64,
    /// The bench's own CPU time (user + system) during the step.
    pub cpu_s: f64,
    /// `cpu_s / wall_s`: 1.0 is one core busy all the time.
    pub cpu_cores: f64,
    /// Failures ≤ 0.1 % and push p99 within the bound.
    pub clean: bool,
    /// The first few failed calls, described.
    pub failed_calls: Vec<String>,
    /// Latency over time and distribution, per stage (the HTML plots; not in the JSON).
    #[serde(skip)]
    pub plots: BTreeMap<Stage, Plot>,
}

impl StepReport {
    /// Builds the step's report from its statistics.
    pub fn new(
        rate: f64,
        offered: u64,
        stats: &Stats,
        wall: Duration,
        cpu: Duration,
        bound: Duration,
    ) -> StepReport {
        let finished = stats.finished();
        let failures = stats.failures();
        let failure_share = if finished == 0 {
            0.0
        } else {
            failures as f64 / finished as f64
        };
        let mut latency_ms = BTreeMap::new();
        let mut plots = BTreeMap::new();
        for stage in Stage::ALL {
            let p = stats.percentiles(stage);
            if p.count > 0 {
                latency_ms.insert(stage.name().to_owned(), p);
                plots.insert(
                    stage,
                    (stats.points(stage).to_vec(), stats.distribution(stage)),
                );
            }
        }
        let wall_s = wall.as_secs_f64().max(1e-3);
        let push_p99 = latency_ms.get("push").map(|p| p.p99_ms).unwrap_or(0.0);
        StepReport {
            rate,
            offered,
            finished,
            failures,
            failure_share,
            outcomes: stats
                .outcomes
                .iter()
                .map(|(o, n)| (o.name().to_owned(), *n))
                .collect(),
            throughput_cps: (finished - failures) as f64 / wall_s,
            wall_s,
            cpu_s: cpu.as_secs_f64(),
            cpu_cores: cpu.as_secs_f64() / wall_s,
            clean: finished > 0
                && finished == offered
                && failure_share <= 0.001
                && push_p99 <= bound.as_secs_f64() * 1000.0,
            latency_ms,
            plots,
            failed_calls: stats.examples.clone(),
        }
    }

    /// The step as text: the outcomes, then a table of percentiles.
    pub fn text(&self) -> String {
        let mut out = format!(
            "rate {:.1}/s: {} calls offered, {} finished, {} failed ({:.2} %), throughput {:.1} calls/s, bench CPU {:.1} s in {:.1} s ({:.2} cores)\n  outcomes: {}\n",
            self.rate,
            self.offered,
            self.finished,
            self.failures,
            self.failure_share * 100.0,
            self.throughput_cps,
            self.cpu_s,
            self.wall_s,
            self.cpu_cores,
            self.outcomes
                .iter()
                .map(|(o, n)| format!("{o} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.push_str(&format!(
            "  {:<9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "ms", "calls", "p50", "p90", "p99", "p99.9", "max"
        ));
        for stage in Stage::ALL {
            if let Some(p) = self.latency_ms.get(stage.name()) {
                out.push_str(&format!(
                    "  {:<9} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}   {}\n",
                    stage.name(),
                    p.count,
                    p.p50_ms,
                    p.p90_ms,
                    p.p99_ms,
                    p.p999_ms,
                    p.max_ms,
                    stage.meaning()
                ));
            }
        }
        for e in &self.failed_calls {
            out.push_str(&format!("  failed: {e}\n"));
        }
        out
    }
}

/// What `--find-knee` found.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Knee {
    /// The highest rate whose step was clean (and every step below it), if any was.
    pub rate: Option<f64>,
    /// The push-latency p99 bound, ms.
    pub push_p99_bound_ms: f64,
    /// Why the search stopped.
    pub stopped: String,
}

/// The whole run, as `--json` writes it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    /// pushbench's version.
    pub pushbench_version: String,
    /// The target's name.
    pub target: String,
    /// Its cancel profile.
    pub cancel_profile: String,
    /// Phones registered.
    pub phones: usize,
    /// Of which awake.
    pub awake_phones: usize,
    /// How calls arrived.
    pub arrivals: Arrivals,
    /// Seconds per step.
    pub duration_s: u64,
    /// The schedule's seed.
    pub seed: u64,
    /// The call mix: shares cancelled, to dead tokens, to phones in flight mode.
    pub mix: BTreeMap<String, f64>,
    /// How long registering the phones took, s.
    pub setup_s: f64,
    /// One entry per rate.
    pub steps: Vec<StepReport>,
    /// `--find-knee`'s finding.
    pub knee: Option<Knee>,
}

impl LoadReport {
    /// An empty report of a run with `opts` against `target` (`cancel` is its profile).
    pub fn new(opts: &LoadOptions, target: &str, cancel: &str, awake: usize) -> LoadReport {
        LoadReport {
            pushbench_version: env!("CARGO_PKG_VERSION").to_owned(),
            target: target.to_owned(),
            cancel_profile: cancel.to_owned(),
            phones: opts.phones,
            awake_phones: awake,
            arrivals: opts.arrivals,
            duration_s: opts.duration,
            seed: opts.seed,
            mix: [
                ("cancel", opts.cancel_share),
                ("dead-token", opts.dead_token_share),
                ("flight", opts.flight_share),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            setup_s: 0.0,
            steps: Vec::new(),
            knee: None,
        }
    }

    /// The step the HTML plots: the knee's, else the last.
    fn plotted(&self) -> Option<&StepReport> {
        let knee = self.knee.as_ref().and_then(|k| k.rate);
        self.steps
            .iter()
            .rev()
            .find(|s| Some(s.rate) == knee)
            .or(self.steps.last())
    }

    /// The JSON text.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The HTML page.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>pushbench load: {t}</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}svg{{border:1px solid #ddd;margin:4px}}</style></head><body><h1>pushbench load against {t}</h1><p>pushbench {v}; {p} phones ({a} awake); {arr:?} arrivals, {d} s per rate, seed {s}; cancel profile {c}; registering took {su:.1} s.</p>",
            t = esc(&self.target),
            v = self.pushbench_version,
            p = self.phones,
            a = self.awake_phones,
            arr = self.arrivals,
            d = self.duration_s,
            s = self.seed,
            c = esc(&self.cancel_profile),
            su = self.setup_s,
        );
        if let Some(k) = &self.knee {
            let _ = write!(
                h,
                "<h2>Knee</h2><p>highest clean rate: <b>{}</b> (failures ≤ 0.1 %, push p99 ≤ {} ms); stopped: {}</p>",
                k.rate.map(|r| format!("{r:.1} calls/s")).unwrap_or_else(|| "none".into()),
                k.push_p99_bound_ms,
                esc(&k.stopped)
            );
        }
        h.push_str("<h2>Steps</h2><table><tr><th>rate</th><th>offered</th><th>failed</th><th>throughput</th><th>push p50/p99 ms</th><th>setup p50/p99 ms</th><th>bench CPU (cores)</th><th>outcomes</th><th>clean</th></tr>");
        for s in &self.steps {
            let p = |n: &str| {
                s.latency_ms
                    .get(n)
                    .map(|p| format!("{:.1} / {:.1}", p.p50_ms, p.p99_ms))
                    .unwrap_or_else(|| "–".into())
            };
            let _ = write!(
                h,
                "<tr><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.2}</td><td style=\"text-align:left\">{}</td><td>{}</td></tr>",
                s.rate,
                s.offered,
                s.failures,
                s.throughput_cps,
                p("push"),
                p("setup"),
                s.cpu_cores,
                esc(&s.outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect::<Vec<_>>().join(", ")),
                if s.clean { "yes" } else { "no" }
            );
        }
        h.push_str("</table>");
        if let Some(s) = self.plotted() {
            let _ = write!(
                h,
                "<h2>Latencies at {:.1} calls/s</h2><pre>{}</pre>",
                s.rate,
                esc(&s.text())
            );
            h.push_str("<h3>Latency over time</h3>");
            h.push_str(&over_time_svg(s));
            h.push_str("<h3>Latency distribution</h3>");
            h.push_str(&distribution_svg(s));
        }
        h.push_str("</body></html>\n");
        h
    }
}

const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#111111",
];
const W: f64 = 760.0;
const H: f64 = 320.0;
const M: f64 = 50.0;

fn legend(out: &mut String, stages: &[Stage]) {
    for (i, stage) in stages.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"14\" font-size=\"12\" fill=\"{}\">■ {}</text>",
            M + 110.0 * i as f64,
            COLORS[*stage as usize % COLORS.len()],
            stage.name()
        );
    }
}

fn axes(out: &mut String, x_label: &str, y_label: &str, x_max: &str, y_max: &str) {
    let _ = write!(
        out,
        "<line x1=\"{M}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/><line x1=\"{M}\" y1=\"{M}\" x2=\"{M}\" y2=\"{b}\" stroke=\"#333\"/><text x=\"{r}\" y=\"{lb}\" font-size=\"11\" text-anchor=\"end\">{x_label} (max {x_max})</text><text x=\"4\" y=\"{ly}\" font-size=\"11\">{y_label}</text><text x=\"4\" y=\"{M}\" font-size=\"11\">{y_max}</text>",
        b = H - M,
        r = W - 10.0,
        lb = H - M + 30.0,
        ly = M - 12.0,
    );
}

/// Each stage's latency against the call's start time, linear axes.
fn over_time_svg(s: &StepReport) -> String {
    let stages: Vec<Stage> = s.plots.keys().copied().collect();
    let t_max = s
        .plots
        .values()
        .flat_map(|(p, _)| p.iter().map(|p| p.t_s))
        .fold(1e-3, f64::max);
    let y_max = s
        .plots
        .values()
        .flat_map(|(p, _)| p.iter().map(|p| p.ms))
        .fold(1e-3, f64::max);
    let mut out =
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\">");
    legend(&mut out, &stages);
    axes(
        &mut out,
        "call start, s",
        "latency, ms",
        &format!("{t_max:.1}"),
        &format!("{y_max:.1}"),
    );
    for (stage, (points, _)) in &s.plots {
        let color = COLORS[*stage as usize % COLORS.len()];
        for p in points {
            let x = M + (W - M - 10.0) * p.t_s / t_max;
            let y = (H - M) - (H - 2.0 * M) * p.ms / y_max;
            let _ = write!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"1.5\" fill=\"{color}\"/>"
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Each stage's cumulative distribution, latency on a log axis.
fn distribution_svg(s: &StepReport) -> String {
    let stages: Vec<Stage> = s.plots.keys().copied().collect();
    let all = || {
        s.plots
            .values()
            .flat_map(|(_, d)| d.iter().map(|d| d.0.max(1e-3)))
    };
    let lo = all().fold(f64::INFINITY, f64::min).min(1.0).log10().floor();
    let hi = all().fold(1e-3, f64::max).log10().ceil().max(lo + 1.0);
    let mut out =
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\">");
    legend(&mut out, &stages);
    axes(
        &mut out,
        "latency, ms (log)",
        "share of calls",
        &format!("{:.0}", 10f64.powf(hi)),
        "1.0",
    );
    for (stage, (_, dist)) in &s.plots {
        let color = COLORS[*stage as usize % COLORS.len()];
        let pts: Vec<String> = dist
            .iter()
            .map(|(ms, q)| {
                let x = M + (W - M - 10.0) * (ms.max(1e-3).log10() - lo) / (hi - lo);
                let y = (H - M) - (H - 2.0 * M) * q;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            pts.join(" ")
        );
    }
    out.push_str("</svg>");
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::Outcome;

    fn report() -> LoadReport {
        let mut stats = Stats::new();
        for i in 1..=100u64 {
            stats.record(
                Stage::Push,
                Duration::from_millis(10 * i),
                Duration::from_millis(i),
            );
            stats.record(
                Stage::Setup,
                Duration::from_millis(10 * i),
                Duration::from_millis(2 * i),
            );
            stats.count(Outcome::Answered);
        }
        let step = StepReport::new(
            10.0,
            100,
            &stats,
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let mut r = LoadReport::new(&LoadOptions::default(), "embedded <ref>", "rfc8599-drop", 0);
        r.steps.push(step);
        r
    }

    #[test]
    fn the_json_reads_back() {
        let r = report();
        let back: LoadReport = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(back.steps[0].outcomes["answered"], 100);
        assert!(back.steps[0].clean);
        assert!((back.steps[0].latency_ms["push"].p50_ms - 50.0).abs() < 0.5);
        assert!((back.steps[0].cpu_cores - 0.1).abs() < 1e-9);
    }

    #[test]
    fn the_html_page_has_both_plots_and_escapes_names() {
        let h = report().html();
        assert_eq!(h.matches("<svg").count(), 2);
        assert!(h.contains("<circle"));
        assert!(h.contains("<polyline"));
        assert!(h.contains("embedded &lt;ref&gt;"));
        assert!(!h.contains("NaN"));
    }
}
