"""Protocol-exact device emulators on real pseudo-terminals, for tests, demos and `gate sim ...`.

`pty` is the pty device itself (raw mode, a stable link path, unplug and replug); `relay` emulates an
LCUS-1 board and a Modbus RTU relay board with turnstile inputs; `thermal` emulates the GY-MCU90614,
GY-MCU90640 and plain ASCII-line sensors. The drivers read them exactly as they read real hardware.
"""
