"""Tools around the gate that are not the gate: the local Mosquitto runner (`broker`), the benchmarks
(`bench`), the fleet load run (`fleet`), and what they share: /proc figures (`procstat`) and
percentiles (`stats`). Nothing here is imported by the running gate."""
