"""The gate's hardware drivers, independent of the gate itself (they never import `edge`).

`relay` and `thermal` hold one package per kind of device (a registry table lists its drivers),
`emulators` the protocol-exact pty emulators of those devices, `backoff` the reconnect/restart delay,
`heartbeat` the worker threads' watchdog promise, `serial_port` opening a serial port, `config` the
base of every driver config, `registry` the driver-table machinery, and `cli` the `gate drivers ...`
and `gate sim ...` commands.
"""
