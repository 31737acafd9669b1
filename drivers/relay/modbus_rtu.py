"""Modbus RTU relay boards through minimalmodbus: coils switch relays (the turnstile, a siren), discrete
inputs carry PASS, door, fire (with an optional trouble contact) and the exit button, and an analog input
register can read a supervised fire line's end-of-line resistor.

Switching writes one coil (function 05, FF00 on / 0000 off) and reads it back (function 01); the
inputs are polled with function 02, the end-of-line reading with function 04 (`fire_state` turns it
into fire / trouble by the configured bands: a cut or shorted line is trouble, and trouble is fire).
Framing and CRC are minimalmodbus's. A switch is two round trips
to the board (tens of milliseconds at 9600 baud, up to 2 x timeout_s and a reopen when it does not
answer), so pulse() hands the switch-on to the relay's worker thread and returns at once.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Literal

import serial
from pydantic import Field, model_validator

from drivers.relay.config import RelayConfigBase
from drivers.relay.worker import BaseRelay
from drivers.serial_port import open_serial

if TYPE_CHECKING:  # imported where a board is opened: loading a config must not load minimalmodbus
    import minimalmodbus


class ModbusRtuConfig(RelayConfigBase):
    type: Literal["modbus_rtu"] = Field("modbus_rtu", description="Modbus RTU relay board (RS-485 adapter).")
    port: str = Field("/dev/ttyUSB0", description="Serial port of the RS-485 adapter.")
    baud: int = Field(9600, ge=1200, le=115200, description="Serial speed (8N1).")
    slave: int = Field(1, ge=1, le=247, description="The board's Modbus address.")
    coil: int = Field(0, ge=0, le=65535, description="Coil address of the turnstile relay (0 = relay 1).")
    verify: bool = Field(True, description="Read the coil back (function 01) after every write.")
    pass_input: int | None = Field(None, ge=0, le=65535, description="Discrete input wired to the "
                                   "turnstile's PASS output (function 02), or unset.")
    door_input: int | None = Field(None, ge=0, le=65535, description="Discrete input wired to a door "
                                   "sensor, or unset.")
    fire_input: int | None = Field(None, ge=0, le=65535, description="Discrete input wired to the fire "
                                   "panel's contact (see fire_contact), or unset.")
    fire_trouble_input: int | None = Field(None, ge=0, le=65535, description="Discrete input wired to the "
                                           "fire panel's trouble contact (see fire_contact), or unset.")
    fire_eol_register: int | None = Field(None, ge=0, le=65535, description="Input register (function 04) "
                                          "reading the supervised fire line's end-of-line resistor, instead "
                                          "of fire_input; or unset.")
    fire_eol_bands: tuple[int, int, int] = Field(
        (100, 400, 800), description="End-of-line reading: below the first = shorted line (trouble), below "
                                     "the second = fire, below the third = normal, above = cut line (trouble).")
    exit_input: int | None = Field(None, ge=0, le=65535, description="Discrete input wired to the exit "
                                   "button, or unset.")
    siren_coil: int | None = Field(None, ge=0, le=65535, description="Coil of the siren relay, or unset.")
    inputs_active_low: bool = Field(False, description="Inputs read 0 when their contact is closed.")
    timeout_s: float = Field(0.2, gt=0, le=5, description="How long to wait for the board's answer.")

    @model_validator(mode="after")
    def _distinct(self) -> ModbusRtuConfig:
        inputs = [x for x in (self.pass_input, self.door_input, self.fire_input, self.fire_trouble_input,
                              self.exit_input) if x is not None]
        if len(inputs) != len(set(inputs)):
            raise ValueError(f"pass_input, door_input, fire_input, fire_trouble_input and exit_input must be "
                             f"different discrete inputs, got {inputs}")
        if self.siren_coil is not None and self.siren_coil == self.coil:
            raise ValueError("siren_coil must not be the turnstile's coil")
        if self.fire_eol_register is not None and self.fire_input is not None:
            raise ValueError("set fire_input or fire_eol_register, not both")
        if not 0 <= self.fire_eol_bands[0] < self.fire_eol_bands[1] < self.fire_eol_bands[2] <= 65535:
            raise ValueError(f"fire_eol_bands must rise within 0..65535, got {list(self.fire_eol_bands)}")
        return self


def fire_state(reading: int, bands: tuple[int, int, int]) -> tuple[bool, bool]:
    """(fire, trouble) from an end-of-line reading: a shorted or cut line is trouble, and then fire too."""
    short, fire, normal = bands
    trouble = reading < short or reading >= normal
    return trouble or reading < fire, trouble


class ModbusRtuRelay(BaseRelay):
    name = "modbus_rtu"
    switch_in_worker = True

    def __init__(self, cfg: ModbusRtuConfig) -> None:
        super().__init__(cfg)
        self.cfg = cfg
        self._serial: serial.Serial | None = None
        self._instrument: minimalmodbus.Instrument | None = None
        wired = (("pass", cfg.pass_input), ("door", cfg.door_input), ("fire", cfg.fire_input),
                 ("fire_trouble", cfg.fire_trouble_input), ("exit", cfg.exit_input))
        self._input_map = {name: addr for name, addr in wired if addr is not None}
        eol = ("fire", "fire_trouble") if cfg.fire_eol_register is not None else ()
        self.input_names = tuple(dict.fromkeys([*self._input_map, *eol]))
        self.has_siren = cfg.siren_coil is not None

    def _open(self) -> None:
        import minimalmodbus

        ser = open_serial(self.cfg.port, self.cfg.baud, timeout=self.cfg.timeout_s)
        instrument = minimalmodbus.Instrument(ser, self.cfg.slave, mode=minimalmodbus.MODE_RTU)
        instrument.clear_buffers_before_each_transaction = True
        self._serial, self._instrument = ser, instrument

    def _close_port(self) -> None:
        ser, self._serial, self._instrument = self._serial, None, None
        if ser is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                ser.close()

    def _modbus(self) -> minimalmodbus.Instrument:
        if self._instrument is None:
            self._open()
        assert self._instrument is not None
        return self._instrument

    def _write(self, on: bool) -> None:
        instrument = self._modbus()
        instrument.write_bit(self.cfg.coil, 1 if on else 0, functioncode=5)
        if self.cfg.verify:
            state = instrument.read_bit(self.cfg.coil, functioncode=1)
            if bool(state) != on:
                raise OSError(f"coil {self.cfg.coil} reads back {state} after writing {int(on)}")

    def read_coil(self) -> bool:
        """The coil as the board reports it (function 01)."""
        with self._io:
            return bool(self._modbus().read_bit(self.cfg.coil, functioncode=1))

    def _write_siren(self, on: bool) -> None:
        assert self.cfg.siren_coil is not None
        instrument = self._modbus()
        instrument.write_bit(self.cfg.siren_coil, 1 if on else 0, functioncode=5)

    def _read_inputs(self) -> dict[str, bool]:
        out = self._read_discrete()
        if self.cfg.fire_eol_register is not None:
            reading = self._modbus().read_register(self.cfg.fire_eol_register, functioncode=4)
            fire, trouble = fire_state(int(reading), self.cfg.fire_eol_bands)
            out["fire"], out["fire_trouble"] = fire, trouble or out.get("fire_trouble", False)
        return out

    def _read_discrete(self) -> dict[str, bool]:
        if not self._input_map:
            return {}
        instrument = self._modbus()
        first = min(self._input_map.values())
        count = max(self._input_map.values()) - first + 1
        if count <= 64:  # one request for neighbouring inputs
            bits = instrument.read_bits(first, count, functioncode=2)
            raw = {name: bits[addr - first] for name, addr in self._input_map.items()}
        else:
            raw = {name: instrument.read_bit(addr, functioncode=2) for name, addr in self._input_map.items()}
        closed = {name: bool(value) != self.cfg.inputs_active_low for name, value in raw.items()}
        nc = self.cfg.fire_contact == "nc"  # an NC contact: open (or cut) means fire / trouble
        return {name: c != nc if name in ("fire", "fire_trouble") else c for name, c in closed.items()}
