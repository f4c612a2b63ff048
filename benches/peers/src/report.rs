//! Markdown table, CSV of every sample, and a hand-written SVG chart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::stores::Engine;
use crate::{Config, Results, Sample, Workload, KEY_BYTES, VALUE_BYTES};

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The value in the workload's display unit.
fn shown(w: &Workload, s: &Sample) -> f64 {
    match w {
        Workload::DiskBytes => s.value / 1048576.0,
        _ => s.value,
    }
}

fn fmt_num(x: f64) -> String {
    if x >= 1000.0 {
        let s = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Per-run ratio of ferrocask to the best other store in that run (best = highest for
/// throughput, lowest for time and bytes). Only durable stores count for puts.
fn per_run_ratios(w: &Workload, by: &std::collections::BTreeMap<Engine, Vec<Sample>>) -> Option<(Vec<f64>, Vec<Engine>)> {
    let ferro = by.get(&Engine::Ferrocask)?;
    let mut ratios = Vec::new();
    let mut best_names = Vec::new();
    for (r, f) in ferro.iter().enumerate() {
        let peers = by.iter().filter(|(e, s)| {
            **e != Engine::Ferrocask && s.len() > r && (e.durable() || !matches!(w, Workload::Put { .. }))
        });
        let best = if w.higher_is_better() {
            peers.max_by(|a, b| a.1[r].value.partial_cmp(&b.1[r].value).unwrap())
        } else {
            peers.min_by(|a, b| a.1[r].value.partial_cmp(&b.1[r].value).unwrap())
        };
        let (e, s) = best?;
        ratios.push(f.value / s[r].value);
        best_names.push(*e);
    }
    Some((ratios, best_names))
}

pub fn markdown(cfg: &Config, results: &Results, elapsed: Duration) -> String {
    let mut o = String::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _ = writeln!(o, "## Results\n");
    let _ = writeln!(
        o,
        "`peers {}` — {} keys of {KEY_BYTES} B with {VALUE_BYTES} B values, {} s per timed run, {} runs, \
         bulk batches of {} keys; whole run {:.0} s. Each cell: median over runs, with min and max; p50/p99 \
         are medians over runs of each run's per-op latency percentiles.\n",
        args.join(" "),
        cfg.keys,
        cfg.secs,
        cfg.runs,
        cfg.batch,
        elapsed.as_secs_f64()
    );
    for (w, by) in results {
        let better = if w.higher_is_better() { "higher is better" } else { "lower is better" };
        let _ = writeln!(o, "### {} ({}, {better})\n", w.label(), w.unit());
        if w.has_latency() {
            let _ = writeln!(o, "| store | median | min | max | p50 µs | p99 µs |");
            let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|");
        } else {
            let _ = writeln!(o, "| store | median | min | max |");
            let _ = writeln!(o, "|---|---:|---:|---:|");
        }
        for (e, samples) in by {
            let v: Vec<f64> = samples.iter().map(|s| shown(w, s)).collect();
            let mut name = e.name().to_string();
            if matches!(w, Workload::Put { .. }) && !e.durable() {
                name.push_str(" (not durable)");
            }
            if let Workload::Floor = w {
                name = "raw fdatasync (no store)".into();
            } else if *e == Engine::Ferrocask {
                name = format!("**{name}**");
            }
            let _ = write!(o, "| {name} | {} | {} | {} |", fmt_num(median(&v)), fmt_num(min(&v)), fmt_num(max(&v)));
            if w.has_latency() {
                let p50: Vec<f64> = samples.iter().map(|s| s.p50_us).collect();
                let p99: Vec<f64> = samples.iter().map(|s| s.p99_us).collect();
                let _ = write!(o, " {} | {} |", fmt_num(median(&p50)), fmt_num(median(&p99)));
            }
            let _ = writeln!(o);
        }
        if let Workload::DiskBytes = w {
            let live = cfg.keys as f64 * (KEY_BYTES + VALUE_BYTES) as f64 / 1048576.0;
            let _ = writeln!(o, "\nLive key+value bytes: {} MiB.", fmt_num(live));
        }
        let _ = writeln!(o);
    }
    o.push_str(&targets(cfg, results));
    o
}

fn targets(cfg: &Config, results: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "### Targets (ratios are ferrocask ÷ best peer within the same run: median, min–max over runs)\n");
    let _ = writeln!(o, "| target | measured | verdict |");
    let _ = writeln!(o, "|---|---|---|");
    let ratio_row = |o: &mut String, w: Workload, goal: f64, what: &str| {
        let Some(by) = results.get(&w) else { return };
        let Some((r, best)) = per_run_ratios(&w, by) else { return };
        let names: std::collections::BTreeSet<&str> = best.iter().map(|e| e.name()).collect();
        let m = median(&r);
        let _ = writeln!(
            o,
            "| {what} ≥ {goal}x best peer | {:.2}x ({:.2}–{:.2}) vs {} | {} |",
            m,
            min(&r),
            max(&r),
            names.into_iter().collect::<Vec<_>>().join("/"),
            if m >= goal { "met" } else { "**missed**" }
        );
    };
    ratio_row(&mut o, Workload::Put { threads: 1, value: VALUE_BYTES }, 1.1, "durable puts, 1 thread");
    let w32 = Workload::Put { threads: 32, value: VALUE_BYTES };
    ratio_row(&mut o, w32.clone(), 1.4, "durable puts, 32 threads");
    if let Some(by) = results.get(&w32) {
        if let (Some(f), Some((_, best))) = (by.get(&Engine::Ferrocask), per_run_ratios(&w32, by)) {
            let fp: Vec<f64> = f.iter().map(|s| s.p99_us).collect();
            let bp: Vec<f64> = best.iter().enumerate().map(|(r, e)| by[e][r].p99_us).collect();
            let lower = f.iter().zip(&bp).filter(|(s, b)| s.p99_us < **b).count();
            let _ = writeln!(
                o,
                "| 32-thread p99 lower than best peer's | ferrocask {} µs vs {} µs (medians); lower in {lower} of {} runs | {} |",
                fmt_num(median(&fp)),
                fmt_num(median(&bp)),
                f.len(),
                if median(&fp) < median(&bp) { "met" } else { "**missed**" }
            );
        }
    }
    for &t in &cfg.get_threads {
        ratio_row(&mut o, Workload::Get { threads: t }, 2.0, &format!("random gets, {t} thread(s)"));
    }
    for w in [Workload::OpenWarm, Workload::OpenCold] {
        if let Some(f) = results.get(&w).and_then(|by| by.get(&Engine::Ferrocask)) {
            let v: Vec<f64> = f.iter().map(|s| s.value).collect();
            let _ = writeln!(
                o,
                "| {} ≤ 100 ms | {:.1} ms ({:.1}–{:.1}) | {} |",
                w.label(),
                median(&v),
                min(&v),
                max(&v),
                if median(&v) <= 100.0 { "met" } else { "**missed**" }
            );
        }
    }
    if let Some(f) = results.get(&Workload::DiskBytes).and_then(|by| by.get(&Engine::Ferrocask)) {
        let live = cfg.keys as f64 * (KEY_BYTES + VALUE_BYTES) as f64;
        let v: Vec<f64> = f.iter().map(|s| s.value / live).collect();
        let _ = writeln!(
            o,
            "| bytes on disk after compaction ≤ 1.3x live key+value bytes | {:.2}x ({:.2}–{:.2}) | {} |",
            median(&v),
            min(&v),
            max(&v),
            if median(&v) <= 1.3 { "met" } else { "**missed**" }
        );
    }
    o
}

pub fn csv(results: &Results) -> String {
    let mut o = String::from("workload,store,run,value,unit,p50_us,p99_us\n");
    for (w, by) in results {
        for (e, samples) in by {
            for (r, s) in samples.iter().enumerate() {
                let unit = if let Workload::DiskBytes = w { "bytes" } else { w.unit() };
                let _ = writeln!(o, "{},{},{},{:.3},{unit},{:.3},{:.3}", w.label().replace(',', ";"), e.name(), r + 1, s.value, s.p50_us, s.p99_us);
            }
        }
    }
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Small multiples: one horizontal bar panel per workload, median bar with a min–max whisker.
pub fn svg(cfg: &Config, results: &Results) -> String {
    let panels: Vec<(&Workload, &std::collections::BTreeMap<Engine, Vec<Sample>>)> =
        results.iter().filter(|(w, _)| !matches!(w, Workload::Load | Workload::Floor)).collect();
    let rows = panels.iter().map(|(_, by)| by.len()).max().unwrap_or(1);
    let (cols, pw, label_w, bar_h, gap) = (2usize, 520.0, 120.0, 18.0, 4.0);
    let ph = 46.0 + rows as f64 * (bar_h + gap) + 10.0;
    let nrows = panels.len().div_ceil(cols);
    let (w, h) = (cols as f64 * pw + 20.0, nrows as f64 * ph + 50.0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">ferrocask vs peers: durable writes, reads, open, space ({} keys; median of {} runs, whisker = min–max)</text>"#,
        cfg.keys, cfg.runs
    );
    for (i, (wl, by)) in panels.iter().enumerate() {
        let x0 = 10.0 + (i % cols) as f64 * pw;
        let y0 = 40.0 + (i / cols) as f64 * ph;
        let better = if wl.higher_is_better() { "higher is better" } else { "lower is better" };
        let _ = writeln!(
            o,
            r#"<text x="{x0}" y="{}" font-size="12" font-weight="bold">{} — {} ({better})</text>"#,
            y0 + 14.0,
            esc(&wl.label()),
            wl.unit()
        );
        let stats: Vec<(Engine, f64, f64, f64)> = by
            .iter()
            .map(|(e, s)| {
                let v: Vec<f64> = s.iter().map(|s| shown(wl, s)).collect();
                (*e, median(&v), min(&v), max(&v))
            })
            .collect();
        let top = stats.iter().map(|s| s.3).fold(0.0, f64::max).max(1e-9);
        let plot_w = pw - label_w - 90.0;
        for (j, (e, med, lo, hi)) in stats.iter().enumerate() {
            let y = y0 + 26.0 + j as f64 * (bar_h + gap);
            let bx = x0 + label_w;
            let len = med / top * plot_w;
            let not_durable = matches!(wl, Workload::Put { .. }) && !e.durable();
            let colour = if *e == Engine::Ferrocask { "#d9731a" } else if not_durable { "#b8c4d0" } else { "#4a78a8" };
            let mut name = e.name().to_string();
            if matches!(wl, Workload::Put { .. }) && !e.durable() {
                name.push_str(" (!)");
            }
            let _ = writeln!(o, r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, bx - 6.0, y + bar_h * 0.72, esc(&name));
            let _ = writeln!(o, r#"<rect x="{bx}" y="{y}" width="{len:.1}" height="{bar_h}" fill="{colour}"/>"#);
            let (wx0, wx1, wy) = (bx + lo / top * plot_w, bx + hi / top * plot_w, y + bar_h / 2.0);
            let _ = writeln!(o, r#"<line x1="{wx0:.1}" y1="{wy}" x2="{wx1:.1}" y2="{wy}" stroke="black" stroke-width="1"/>"#);
            for wx in [wx0, wx1] {
                let _ = writeln!(o, r#"<line x1="{wx:.1}" y1="{}" x2="{wx:.1}" y2="{}" stroke="black"/>"#, wy - 4.0, wy + 4.0);
            }
            let _ = writeln!(o, r#"<text x="{:.1}" y="{}">{}</text>"#, wx1.max(bx + len) + 5.0, y + bar_h * 0.72, fmt_num(*med));
        }
    }
    let _ = writeln!(
        o,
        r#"<text x="10" y="{}" font-size="10">(!) sled as documented (insert + flush) is not durable: its flush ends in sync_file_range. sled+fdatasync adds fdatasync of its data file.</text>"#,
        h - 10.0
    );
    o.push_str("</svg>\n");
    o
}
