"""Vendor-behaviour emulators of a Tasmota plug and a Shelly Gen2 plug, for tests.

Written from the vendors' documentation (Tasmota: Commands, MQTT and JSON status pages;
Shelly: Gen2 RPC over MQTT, the Switch component), deliberately NOT from LastWatt's own
simulated firmware in ``firmware_bridge/simulated``: the bridge must meet plugs it has never
seen. Each emulator is a real MQTT client (paho, MQTT 3.1.1 as the firmwares speak) with its
own Last Will, drawing a constant load while its relay is on, integrated on the monotonic
clock. ``counter_wh`` is the plug's own energy register at full precision: what a test
compares the controller's recorded energy with.

Tasmota, as documented: FullTopic ``%prefix%/%topic%/``; a command's answer on
``stat/<t>/RESULT`` and then (POWER) ``stat/<t>/POWER``; unknown commands answered
``{"Command":"Unknown"}``; TelePeriod 10..3600 s (1..9 -> 10, 0 off, default 300) with
``tele/<t>/STATE`` and ``tele/<t>/SENSOR`` ``ENERGY{Total kWh, Period Wh, ...}``, all values 0
with the relay off except the totals; ``Total`` with ``EnergyRes`` decimals (default 3:
1 Wh); ``Status 8`` / ``Status 10`` answered on ``stat/<t>/STATUS8`` / ``STATUS10`` as
``{"StatusSNS":{"Time":..,"ENERGY":{..}}}``; ``PulseTime`` 1..111 tenths of a second,
112..64900 seconds + 100, restarted by every ``POWER ON`` and by ``PulseTime`` itself; LWT
``Online``/``Offline`` retained at QoS 1, everything else QoS 0. ``pulsetime=False`` is a
build without the command.

Shelly Gen2, as documented: RPC requests on ``<prefix>/rpc`` need ``src`` and are answered on
``<src>/rpc`` with ``{"id","src":<device id>,"dst","result"|"error"}``; ``Switch.Set``
answers ``{"was_on"}`` and takes ``toggle_after`` (s); ``NotifyStatus`` on
``<prefix>/events/rpc`` with only the changed keys (output on a switch; ``aenergy`` about once
a minute); ``<prefix>/status/switch:0`` only when generic status updates are enabled (off by
default); ``aenergy.total`` Wh, ``by_minute`` mWh newest first; ``<prefix>/online``
``true``/``false`` retained; QoS 1.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

TICK_S = 0.005  # the emulators' timer resolution


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class Emulator:
    """One plug: an MQTT client, a relay, a constant load and its energy register."""

    def __init__(self, port: int, client_id: str, load_w: float) -> None:
        self.load_w = load_w
        self.lock = threading.RLock()
        self.on = False
        self.energy_wh = 0.0
        self.last_mono = time.monotonic()
        self.off_at = math.inf  # the device's own off-timer (monotonic)
        self.commands: list[tuple[float, str]] = []  # (monotonic, "POWER ON" ...) received
        self.published: Counter[str] = Counter()
        self.port = port
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=MQTTProtocolVersion.MQTTv311, clean_session=True)
        self.client.on_connect = lambda c, u, f, rc, p: self._connected()
        self.client.on_message = lambda c, u, m: self._message(m.topic, m.payload)
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._timers, daemon=True)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Emulator:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                raise TimeoutError("emulator did not connect")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()

    # --- physics -------------------------------------------------------------------------

    def _advance(self) -> None:
        now = time.monotonic()
        if self.on:
            self.energy_wh += self.load_w * (now - self.last_mono) / 3600.0
        self.last_mono = now

    def _relay(self, on: bool) -> bool:
        with self.lock:
            self._advance()
            was, self.on = self.on, on
            return was

    @property
    def counter_wh(self) -> float:
        with self.lock:
            self._advance()
            return self.energy_wh

    @property
    def power_w(self) -> float:
        return self.load_w if self.on else 0.0

    def power_commands_since(self, mono: float) -> int:
        with self.lock:
            return sum(1 for t, c in self.commands if t >= mono and c.startswith("POWER"))

    # --- wire ----------------------------------------------------------------------------

    def publish(self, topic: str, payload: Any, qos: int, retain: bool = False) -> None:
        body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        self.published[topic] += 1
        self.client.publish(topic, body, qos, retain)

    def _timers(self) -> None:
        while not self._stop.wait(TICK_S):
            with self.lock:
                if time.monotonic() >= self.off_at:
                    self.off_at = math.inf
                    self._timer_off()
                self._tick()

    def _connected(self) -> None: ...

    def _message(self, topic: str, payload: bytes) -> None: ...

    def _timer_off(self) -> None: ...

    def _tick(self) -> None: ...


class TasmotaEmulator(Emulator):
    def __init__(self, port: int, topic: str, load_w: float, *, pulsetime: bool = True,
                 full_topic: str = "%prefix%/%topic%/", tele_period_s: int = 300) -> None:
        super().__init__(port, f"DVES_{topic}", load_w)
        self.topic, self.full_topic, self.has_pulsetime = topic, full_topic, pulsetime
        self.tele_period_s = tele_period_s
        self.pulsetime = 0
        self.energy_res = 3
        self.period_start_wh = 0.0
        self.next_tele = time.monotonic() + tele_period_s
        self.client.will_set(self.t("tele", "LWT"), "Offline", 1, True)

    def t(self, prefix: str, leaf: str) -> str:
        return self.full_topic.replace("%prefix%", prefix).replace("%topic%", self.topic) + leaf

    def _connected(self) -> None:
        self.client.subscribe(self.t("cmnd", "#"), 0)
        self.publish(self.t("tele", "LWT"), "Online", 1, True)

    def _message(self, topic: str, payload: bytes) -> None:
        command = topic.rsplit("/", 1)[1].upper()
        arg = payload.decode(errors="replace").strip()
        with self.lock:
            self.commands.append((time.monotonic(), f"{command} {arg}".strip()))
            self._command(command, arg)

    def _result(self, body: dict[str, Any]) -> None:
        self.publish(self.t("stat", "RESULT"), body, 0)

    def _command(self, command: str, arg: str) -> None:
        if command in ("POWER", "POWER1"):
            self._power(arg)
        elif command in ("PULSETIME", "PULSETIME1") and self.has_pulsetime:
            if arg:
                self.pulsetime = min(max(int(arg), 0), 64900)
                seconds = self._pulse_s()
                self.off_at = time.monotonic() + seconds if seconds > 0 else math.inf
            left = max(0.0, self.off_at - time.monotonic()) if math.isfinite(self.off_at) else 0
            remaining = int(left * 10) if left <= 11.1 else int(left) + 100
            self._result({"PulseTime1": {"Set": self.pulsetime, "Remaining": remaining}})
        elif command == "TELEPERIOD":
            if arg:
                value = int(arg)
                self.tele_period_s = 0 if value <= 0 else min(max(value, 10), 3600)
                self.next_tele = time.monotonic() + self.tele_period_s
            self._result({"TelePeriod": self.tele_period_s})
            self._telemetry()  # the command forces STATE + SENSOR now
        elif command == "ENERGYRES":
            if arg:
                self.energy_res = min(max(int(arg), 0), 5)
            self._result({"EnergyRes": self.energy_res})
        elif command == "STATUS" and arg in ("8", "10"):
            self.publish(self.t("stat", f"STATUS{arg}"),
                         {"StatusSNS": {"Time": _now_text(), "ENERGY": self._energy()}}, 0)
        else:
            self._result({"Command": "Unknown"})

    def _pulse_s(self) -> float:
        return self.pulsetime / 10 if self.pulsetime <= 111 else self.pulsetime - 100.0

    def _power(self, arg: str) -> None:
        value = arg.upper()
        if value:
            if value in ("ON", "1", "TRUE"):
                on = True
            elif value in ("OFF", "0", "FALSE"):
                on = False
            elif value in ("TOGGLE", "2"):
                on = not self.on
            else:
                self._result({"Command": "Error"})
                return
            self._relay(on)
            seconds = self._pulse_s()
            self.off_at = time.monotonic() + seconds if on and seconds > 0 else math.inf
        self._state_changed()

    def _state_changed(self) -> None:
        text = "ON" if self.on else "OFF"
        self._result({"POWER": text})
        self.publish(self.t("stat", "POWER"), text, 0)

    def _timer_off(self) -> None:
        if self.on:
            self._relay(False)
            self._state_changed()

    def _energy(self) -> dict[str, Any]:
        self._advance()
        total_kwh = round(self.energy_wh / 1000.0, self.energy_res)
        p = self.power_w
        return {"TotalStartTime": "2026-01-01T00:00:00", "Total": total_kwh, "Yesterday": 0.0,
                "Today": total_kwh, "Period": round(self.energy_wh - self.period_start_wh),
                "Power": round(p), "ApparentPower": round(p / 0.95) if p else 0,
                "ReactivePower": round(p * 0.33) if p else 0,
                "Factor": 0.95 if p else 0.0, "Voltage": 230 if p else 0,
                "Current": round(p / 230.0, 3)}

    def _telemetry(self) -> None:
        energy = self._energy()
        self.period_start_wh = self.energy_wh
        self.publish(self.t("tele", "STATE"), {"Time": _now_text(), "Uptime": "0T00:00:10",
                                               "POWER": "ON" if self.on else "OFF"}, 0)
        self.publish(self.t("tele", "SENSOR"), {"Time": _now_text(), "ENERGY": energy}, 0)

    def _tick(self) -> None:
        if self.tele_period_s > 0 and time.monotonic() >= self.next_tele:
            self.next_tele += self.tele_period_s
            self._telemetry()


class ShellyEmulator(Emulator):
    def __init__(self, port: int, device_id: str, load_w: float, *, prefix: str | None = None,
                 notify_period_s: float = 60.0, generic_status: bool = False,
                 toggle_after: bool = True) -> None:
        super().__init__(port, device_id, load_w)
        self.device_id, self.prefix = device_id, prefix or device_id
        self.notify_period_s, self.generic_status = notify_period_s, generic_status
        self.has_toggle_after = toggle_after
        self.next_notify = time.monotonic() + notify_period_s
        self.minute_ts = int(time.time() // 60 * 60)
        self.minute_start_wh = 0.0
        self.by_minute = [0.0, 0.0, 0.0]
        self.timer: tuple[float, float] | None = None  # (started_at epoch s, duration s)
        self.client.will_set(f"{self.prefix}/online", "false", 1, True)

    def _connected(self) -> None:
        self.client.subscribe(f"{self.prefix}/rpc", 1)
        self.publish(f"{self.prefix}/online", "true", 1, True)

    def status(self) -> dict[str, Any]:
        self._advance()
        minute = int(time.time() // 60 * 60)
        if minute != self.minute_ts:
            done = (self.energy_wh - self.minute_start_wh) * 1000.0
            self.by_minute = [round(done, 3), *self.by_minute[:2]]
            self.minute_ts, self.minute_start_wh = minute, self.energy_wh
        p = self.power_w
        out = {"id": 0, "source": "MQTT", "output": self.on, "apower": round(p, 1),
               "voltage": 230.1, "freq": 50.0, "current": round(p / 230.1, 3),
               "aenergy": {"total": round(self.energy_wh, 3), "by_minute": self.by_minute,
                           "minute_ts": self.minute_ts},
               "temperature": {"tC": 38.5, "tF": 101.3}}
        if self.timer is not None:
            out["timer_started_at"], out["timer_duration"] = self.timer
        return out

    def _notify(self, changed: dict[str, Any]) -> None:
        frame = {"src": self.device_id, "dst": f"{self.prefix}/events", "method": "NotifyStatus",
                 "params": {"ts": round(time.time(), 2), "switch:0": {"id": 0, **changed}}}
        self.publish(f"{self.prefix}/events/rpc", frame, 1)
        if self.generic_status:
            self.publish(f"{self.prefix}/status/switch:0", self.status(), 1)

    def _message(self, topic: str, payload: bytes) -> None:
        try:
            frame = json.loads(payload)
        except ValueError:
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("src"), str):
            return  # nowhere to answer
        method, params = frame.get("method"), frame.get("params") or {}
        with self.lock:
            self.commands.append((time.monotonic(), f"{method} {json.dumps(params)}"))
            try:
                body: dict[str, Any] = {"result": self._call(method, params)}
            except RpcError as err:
                body = {"error": {"code": err.code, "message": err.message}}
            reply = {"id": frame.get("id"), "src": self.device_id, "dst": frame["src"], **body}
            self.publish(f"{frame['src']}/rpc", reply, 1)

    def _call(self, method: Any, params: dict[str, Any]) -> Any:
        if method not in ("Switch.Set", "Switch.Toggle", "Switch.GetStatus"):
            raise RpcError(404, f"No handler for {method}")
        if params.get("id") != 0:
            raise RpcError(-105, f"Argument 'id', value {params.get('id')} not found!")
        if method == "Switch.GetStatus":
            return self.status()
        on = params.get("on") if method == "Switch.Set" else not self.on
        if not isinstance(on, bool):
            raise RpcError(-103, "Missing required argument 'on'!")
        after = params.get("toggle_after")
        if after is not None and (not self.has_toggle_after or isinstance(after, bool)
                                  or not isinstance(after, int | float) or after <= 0):
            raise RpcError(-103, "Invalid argument 'toggle_after'!")
        was_on = self._relay(on)
        self.timer = (round(time.time(), 2), float(after)) if after else None
        self.off_at = time.monotonic() + after if after else math.inf
        if was_on != on:
            self._notify({"output": on, "source": "MQTT"})
            self._notify({"apower": round(self.power_w, 1),
                          "current": round(self.power_w / 230.1, 3)})
        return {"was_on": was_on}

    def _timer_off(self) -> None:  # toggle_after flips the output back
        self.timer = None
        self._relay(not self.on)
        self._notify({"output": self.on, "source": "timer"})

    def _tick(self) -> None:
        if time.monotonic() >= self.next_notify:
            self.next_notify += self.notify_period_s
            self._notify({"aenergy": self.status()["aenergy"]})


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")
