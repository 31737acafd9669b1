"""The fleet run's text report (`render`) and what it says about the broker (`broker_notes`: its $SYS
figures, CPU, memory and log tail when the run started it)."""

from __future__ import annotations

from typing import Any

from edge.tools.broker import Mosquitto
from edge.tools.procstat import status_mb

JsonDict = dict[str, Any]


def broker_notes(broker: Mosquitto | None, cpu0: float | None, cpu1: float | None,
                  sys_topics: dict[str, str]) -> JsonDict:
    keys = ("clients/connected", "messages/received", "messages/sent", "load/messages/received/1min",
            "load/messages/sent/1min", "heap/current", "version")
    notes: JsonDict = {k: sys_topics.get(f"$SYS/broker/{k}") for k in keys if f"$SYS/broker/{k}" in sys_topics}
    if broker is not None and broker.proc is not None:
        notes["cpu_s"] = None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 1)
        notes["rss_mb"] = status_mb("VmRSS", broker.proc.pid)
        notes["peak_rss_mb"] = status_mb("VmHWM", broker.proc.pid)
        try:
            notes["log_tail"] = broker.log_path.read_text(errors="replace").splitlines()[-5:]
        except OSError:
            notes["log_tail"] = []
    return notes


def render(report: JsonDict) -> str:
    ev, wl, res = report["events"], report["whitelist"], report["resources"]
    lat, m, cfg = ev["latency_ms"], report["machine"], report["config"]
    lines = [
        f"fleet: {cfg['gates']} gates x {cfg['rate']} events/s x {cfg['seconds']} s, {cfg['workers']} worker "
        f"processes, {cfg['communities']} communities, deltas every {cfg['deltas_every']} s, broker {cfg['broker']}",
        f"machine: {m['cores']} cores, {m['cpu_model']}, Python {m['python']}; load {m['load_before']} before, "
        f"{m['load_after']} after",
        f"events: {ev['generated']} generated (target {report['run']['target_events']}), {ev['delivered']} delivered, "
        f"{ev['lost']} lost, {ev['duplicates']} duplicates, {ev['unexpected']} unexpected, "
        f"{ev['outbox_left']} left in outboxes (drained {report['run']['drain_s']} s after the stop)",
        f"latency event->collector: p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, p99 {lat.get('p99')} ms, "
        f"max {lat.get('max')} ms",
        f"whitelist: {wl['deltas_pushed']} deltas pushed, {wl['acks_applied']}/{wl['acks_expected']} acks applied "
        f"(per gate {wl['acks_per_gate']['min']}-{wl['acks_per_gate']['max']}), {len(wl['missing'])} missing, "
        f"{len(wl['rejected'])} rejected; ack latency {wl['ack_latency_ms']}",
        f"gates: {report['gates']['reconnects']} reconnects, {report['gates']['publish_failed']} publishes refused, "
        f"{report['gates']['store_errors']} store errors, alarms {report['gates']['alarms']}, "
        f"errors {report['gates']['last_errors']}",
        f"cpu: machine {res['machine_busy_pct']}% busy over {res['window_s']} s; ours {res['ours_cpu_s']} cpu-s "
        f"(parent {res['parent_cpu_s']}, broker {res['broker'].get('cpu_s')}), others {res['others_cpu_s']} cpu-s; "
        f"load1 max {res['load1']['max']} mean {res['load1']['mean']}",
    ]
    lines += [f"  worker {i}: {w['gates']} gates, {w['threads']} threads, {w['cpu_s']} cpu-s, {w['rss_mb']} MB, "
              f"generator lag {w['generator_lag_ms']}" for i, w in enumerate(res["workers"])]
    lines.append(f"broker: { {k: v for k, v in res['broker'].items() if k != 'log_tail'} }")
    lines.append("RESULT: " + ("ok" if report["ok"] else "FAILED: " + "; ".join(report["problems"])))
    return "\n".join(lines)
