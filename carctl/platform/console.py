"""`carctl platform …`: the operator's console. It signs commands with the community's key, publishes them, and
shows the car's verdict; `watch` prints state and events as they arrive.

    carctl platform --broker broker.xihan.example --tls-ca ca.crt --user platform --password-file pw \\
        --key-file xihan.key face-enable --community xihan [--car b7u2]
    carctl platform ... mode --community xihan --car b7u2 out_of_service
    carctl platform ... watch --community xihan
    carctl platform car-key --community xihan --car b7u2 --key-file xihan.key --out b7u2.key

The broker as deployed (deploy/mosquitto/mosquitto.conf) listens only on 8883, with TLS. So the console speaks TLS
whenever `--tls-ca` is given, and `--broker HOST` without a port then means port 8883. Without `--tls-ca` it speaks
plain MQTT, port 1883 unless given, and only to a broker on this machine or with `--allow-plaintext` (a lab network):
the password would otherwise cross the network in the clear. Port 8883 without `--tls-ca` is refused, since plain
MQTT to a TLS listener would only time out. A CA file that cannot be used is bad input (exit 2), and so is a broker
whose certificate does not verify against it or whose TLS handshake fails (a wrong CA, a host name the certificate
was not issued for, a port that does not speak TLS): one sentence, never a traceback or a hang.
With `--per-car-keys` each car's command is signed with that car's own key, derived from the community key
(carctl/platform/keys.py); `car-key` writes that key for a car's `platform.key_file`.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import queue
import socket
import ssl
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from carctl.core.config import MAX_LANDING_INDEX
from carctl.filein import read_bounded
from carctl.platform.commands import MAX_COMMAND_BYTES
from carctl.protocol.loopback import ALARM_ID
from carctl.platform.keys import MAX_CA_FILE_BYTES, KeyFileError, ca_file_problem, car_key, load_key, write_key
from carctl.platform.naming import host_problem, id_problem, is_loopback

EXIT_BAD_INPUT = 2
EXIT_NO_ANSWER = 1
MQTT_PORT = 1883
MQTT_TLS_PORT = 8883  # IANA's port for MQTT over TLS; the deployed broker's only listener
LIFETIME_S = 60.0
MAX_WATCH_S = 366 * 86400.0
MAX_PASSWORD_BYTES = 1024


def add_parser(commands: argparse._SubParsersAction, parser_class: type) -> None:  # type: ignore[type-arg]
    platform = commands.add_parser("platform", help="the operator's console: signed commands to cars")
    platform.add_argument("--broker", help=f"HOST or HOST:PORT ([v6 address]:PORT) of the community's broker; "
                                           f"without a port, {MQTT_TLS_PORT} with --tls-ca, {MQTT_PORT} without")
    platform.add_argument("--user", default="platform")
    platform.add_argument("--password-file", type=Path, help="the operator's broker password (not for car-key)")
    platform.add_argument("--key-file", type=Path, help="the community's command key (not needed for watch)")
    platform.add_argument("--per-car-keys", action="store_true",
                          help="sign each car's command with its own key, derived from the community key")
    platform.add_argument("--tls-ca", type=Path,
                          help="CA certificate (PEM): speak TLS and verify the broker's certificate and host name "
                               "with it; needed for a broker that is not on this machine")
    platform.add_argument("--allow-plaintext", action="store_true",
                          help="allow a broker that is not on this machine without TLS (a lab network: the "
                               "password crosses it in the clear)")
    platform.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the car's answer")
    actions = platform.add_subparsers(dest="platform_command", required=True, parser_class=parser_class)

    def target(sub: argparse.ArgumentParser, car_required: bool = False) -> None:
        sub.add_argument("--community", required=True)
        sub.add_argument("--car", default="*" if not car_required else None, required=car_required,
                         help="car id; without it, every car of the community that reports its state")

    for name in ("face-enable", "config-get"):
        target(actions.add_parser(name))
    disable = actions.add_parser("face-disable")
    target(disable)
    disable.add_argument("--wipe", action="store_true", help="also delete the gallery and its key on the car")
    enroll = actions.add_parser("resident-enroll", help="enrol a resident from photos (sent in the signed command)")
    target(enroll)
    enroll.add_argument("resident")
    enroll.add_argument("--home-landing", type=int, required=True)
    enroll.add_argument("--allowed-landings", default="", help="comma-separated landing indices")
    enroll.add_argument("--consent", required=True, help="reference of the resident's separate consent record")
    enroll.add_argument("photos", type=Path, nargs="+", help="1-5 photos of the resident alone")
    mode = actions.add_parser("mode")
    target(mode, car_required=True)
    mode.add_argument("mode", choices=["normal", "out_of_service", "independent"])
    ack = actions.add_parser("alarm-ack", help="the duty operator has seen the car's alarm: the rider is told help "
                                               "is on the way (it does not end the alarm)")
    target(ack, car_required=True)
    ack.add_argument("--alarm", default="", help="the alarm_id of the alarm seen (from its events or the car's "
                                                 "state): refused if that alarm no longer stands")
    home = actions.add_parser("home-landing")
    target(home, car_required=True)
    home.add_argument("landing", type=int)
    delete = actions.add_parser("resident-delete")
    target(delete)
    delete.add_argument("resident")
    permissions = actions.add_parser("permissions")
    target(permissions)
    permissions.add_argument("state", choices=["on", "off"])
    permissions.add_argument("--free-landings", default="", help="comma-separated landing indices")
    derive = actions.add_parser("car-key", help="write a car's own command key, derived from the community key")
    derive.add_argument("--community", required=True)
    derive.add_argument("--car", required=True)
    derive.add_argument("--out", type=Path, required=True, help="the new key file (mode 0600; never overwritten)")
    derive.add_argument("--key-file", dest="community_key_file", type=Path,
                        help="the community's command key (or give --key-file before car-key)")
    watch = actions.add_parser("watch", help="print state and events as they arrive")
    watch.add_argument("--community", required=True)
    watch.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")


def build_command(kind: str, community: str, car: str, params: dict[str, Any], key: bytes,
                  now_s: float | None = None) -> dict[str, Any]:
    from carctl.platform.commands import sign

    now = time.time() if now_s is None else now_s
    return sign({"id": uuid.uuid4().hex, "type": kind, "community": community, "car": car, "issued_at": now,
                 "expires_at": now + LIFETIME_S, "params": params}, key)


class ConsoleInputError(Exception):
    """A bad option or file; the message is the one sentence printed."""


def _broker_address(text: str, tls: bool) -> tuple[str, int]:
    """(host, port) of --broker: HOST or HOST:PORT, an IPv6 address in brackets (`[::1]`, `[::1]:8883`); without a
    port, the port of the transport (8883 with TLS, 1883 without)."""
    if text.startswith("["):
        end = text.find("]")
        host, rest = (text[:end + 1], text[end + 1:]) if end > 0 else (text, "")
        if rest and not rest.startswith(":"):
            raise ConsoleInputError(f"--broker {text[:80]!r}: expected HOST or HOST:PORT")
        port = rest[1:] if rest else None
    elif ":" in text:
        host, _, port = text.rpartition(":")
        if ":" in host:
            raise ConsoleInputError(f"--broker {text[:80]!r}: give an IPv6 address in brackets ([::1]:{MQTT_TLS_PORT})")
    else:
        host, port = text, None
    if port is not None and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ConsoleInputError(f"--broker {text[:80]!r}: expected HOST or HOST:PORT with a port 1..65535")
    problem = host_problem(host)
    if problem:
        raise ConsoleInputError(f"--broker: {problem}")
    bare = host[1:-1] if host.startswith("[") else host
    return bare, int(port) if port is not None else (MQTT_TLS_PORT if tls else MQTT_PORT)


def _check_args(args: argparse.Namespace) -> None:
    """Every option that can be checked before talking to the broker; ConsoleInputError naming it."""
    for name in ("community", "car"):
        value = getattr(args, name, None)
        if value is not None and not (name == "car" and value == "*"):
            problem = id_problem(name, value)
            if problem:
                raise ConsoleInputError(f"--{name}: {problem}")
    if args.platform_command == "car-key":
        return
    seconds = getattr(args, "seconds", 0.0)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_WATCH_S:
        raise ConsoleInputError(f"--seconds {seconds}: must be 0 (until Ctrl-C) to {MAX_WATCH_S:.0f} s")
    if not math.isfinite(args.timeout) or not 0 < args.timeout <= 600:
        raise ConsoleInputError(f"--timeout {args.timeout}: must be more than 0 and at most 600 s")
    if args.broker is None:
        raise ConsoleInputError(f"--broker HOST is needed: the community's broker (port {MQTT_TLS_PORT}, with "
                                f"--tls-ca, as deployed)")
    host, port = _broker_address(args.broker, tls=args.tls_ca is not None)
    if args.tls_ca is None and not args.allow_plaintext and not is_loopback(host):
        raise ConsoleInputError(f"--broker {host} is not on this machine: give --tls-ca so the password is not sent "
                                f"in the clear (or --allow-plaintext on a lab network)")
    if args.tls_ca is None and port == MQTT_TLS_PORT:
        raise ConsoleInputError(f"--broker {args.broker[:80]}: port {MQTT_TLS_PORT} speaks TLS; give --tls-ca with "
                                f"the broker's CA certificate")
    if args.password_file is None:
        raise ConsoleInputError("--password-file is needed to reach the broker")
    if args.tls_ca is not None:
        _check_ca(args.tls_ca)


def _check_ca(path: Path) -> None:
    problem = ca_file_problem(path)
    if problem is not None:
        raise ConsoleInputError(f"--tls-ca {problem}")


def _read_password(path: Path) -> str:
    try:
        password = read_bounded(path, MAX_PASSWORD_BYTES).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConsoleInputError(f"password file {path} is not readable ({error})") from None
    if not password:
        raise ConsoleInputError(f"password file {path} is empty")
    return password


class NoBroker(Exception):
    """The broker could not be reached in time (it may be down): exit 1, as for a car that does not answer."""


def _client(args: argparse.Namespace, messages: queue.Queue[tuple[str, bytes]]) -> Any:
    """A client connected to the broker, its network thread running; ConsoleInputError if the broker refuses the
    login, NoBroker if it cannot be reached within --timeout."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = _broker_address(args.broker, tls=args.tls_ca is not None)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"carctl-console-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(args.user, _read_password(args.password_file))
    # The TCP connection and the TLS handshake both wait at most --timeout (paho's default is 5 s for each).
    client.connect_timeout = args.timeout
    if args.tls_ca is not None:
        try:
            # What is read here was checked by _check_ca; this is the path a file swapped since would take.
            read_bounded(args.tls_ca, MAX_CA_FILE_BYTES)
            client.tls_set(ca_certs=str(args.tls_ca), cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError) as error:
            raise ConsoleInputError(f"--tls-ca {args.tls_ca}: not a usable CA certificate ({error})") from None
    answered: queue.Queue[Any] = queue.Queue()
    client.on_connect = lambda c, u, flags, reason, properties: answered.put(reason)
    client.on_message = lambda c, u, m: messages.put((m.topic, m.payload))
    where = f"{host}:{port}" + (" (TLS)" if args.tls_ca is not None else "")
    try:
        client.connect(host, port, keepalive=10)
    except ssl.SSLCertVerificationError as error:
        _drop(client)
        why = str(error.verify_message or error.reason).rstrip(".")
        raise ConsoleInputError(f"the broker {where} was not verified against --tls-ca {args.tls_ca} ({why}): check "
                                f"that this is the broker's CA and that --broker names the host its certificate was "
                                f"issued for") from None
    except ssl.SSLError as error:
        _drop(client)
        raise ConsoleInputError(f"the TLS handshake with the broker {where} failed ({error.reason or error}): check "
                                f"that the port speaks TLS and --tls-ca") from None
    except (TimeoutError, socket.timeout) as error:
        _drop(client)
        raise NoBroker(f"the broker {where} did not answer within {args.timeout} s ({error or 'timed out'})") from None
    except ConnectionResetError as error:
        _drop(client)
        if args.tls_ca is not None:  # the broker hung up in the handshake: a listener that does not speak TLS
            raise ConsoleInputError(f"the broker {where} closed the connection during the TLS handshake: check that "
                                    f"the port speaks TLS") from None
        raise NoBroker(f"cannot reach the broker {where}: {error.strerror or error}") from None
    except (OSError, ValueError) as error:
        _drop(client)
        raise NoBroker(f"cannot reach the broker {where}: {getattr(error, 'strerror', None) or error}") from None
    client.loop_start()
    try:
        reason = answered.get(timeout=args.timeout)
    except queue.Empty:
        _close(client)
        raise NoBroker(f"the broker {args.broker} did not answer within {args.timeout} s") from None
    if reason.is_failure:
        _close(client)
        raise ConsoleInputError(f"the broker refused the login of user {args.user!r} ({reason}): check --user and "
                                f"--password-file")
    return client


def _close(client: Any) -> None:
    client.disconnect()
    client.loop_stop()


def _drop(client: Any) -> None:
    """A client whose connection failed: paho 2.2 leaves its wake-up socket pair open (and drops a failed TLS socket
    to the garbage collector, which the console, about to exit, can leave to it)."""
    try:
        client._reset_sockets()  # noqa: SLF001 - paho has no public way to close them
    except OSError:
        pass  # the console is failing already; the sentence the caller prints is what counts


def _write_car_key(args: argparse.Namespace) -> int:
    if not str(args.out) or str(args.out) == "." or args.out.is_dir():
        raise ConsoleInputError(f"--out {str(args.out)!r}: give the path of the new key file")
    community_key_file = args.community_key_file or args.key_file
    if community_key_file is None:
        raise ConsoleInputError("--key-file (the community key) is needed to derive a car's key")
    key = car_key(load_key(community_key_file), args.community, args.car)
    try:
        write_key(args.out, key)
    except FileExistsError:
        raise ConsoleInputError(f"--out {args.out} already exists; not overwriting a key") from None
    except OSError as error:
        raise ConsoleInputError(f"--out {args.out}: {error.strerror}") from None
    print(json.dumps({"car_key": str(args.out), "community": args.community, "car": args.car}))
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        _check_args(args)
        if args.platform_command == "car-key":
            return _write_car_key(args)
        return _run_with_broker(args)
    except (ConsoleInputError, KeyFileError) as error:
        print(f"carctl platform: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run_with_broker(args: argparse.Namespace) -> int:
    action = args.platform_command
    command: tuple[bytes, str, dict[str, Any]] | None = None
    if action != "watch":
        # Everything that can be refused is refused before the broker is reached.
        if args.key_file is None:
            raise ConsoleInputError("--key-file is needed to sign commands")
        kind, params = _params(args)
        command = (load_key(args.key_file), kind, params)
    messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
    try:
        client = _client(args, messages)
    except NoBroker as error:
        print(f"carctl platform: error: {error}", file=sys.stderr)
        return EXIT_NO_ANSWER
    try:
        if command is None:
            return _watch(client, messages, args)
        return _send(client, messages, args, *command)
    finally:
        _close(client)


def _landings(text: str, option: str) -> list[int]:
    try:
        landings = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConsoleInputError(f"{option} {text[:40]!r}: comma-separated landing numbers") from None
    for landing in landings:
        _check_landing(landing, option)
    return landings


def _check_landing(landing: int, option: str) -> int:
    if not 0 <= landing <= MAX_LANDING_INDEX:
        raise ConsoleInputError(f"{option}: landing {str(landing)[:20]} does not exist in any building the car "
                                f"takes (0..{MAX_LANDING_INDEX})")
    return landing


def _photo(path: Path) -> str:
    try:
        return base64.b64encode(read_bounded(path, MAX_COMMAND_BYTES)).decode()
    except OSError as error:
        raise ConsoleInputError(f"cannot read photo {path}: {error.strerror or error}") from None


def _params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The command's type and parameters from the options; ConsoleInputError naming a bad one."""
    action = args.platform_command
    if action == "mode":
        return "car.mode", {"mode": args.mode}
    if action == "alarm-ack":
        if args.alarm and not ALARM_ID.fullmatch(args.alarm):
            raise ConsoleInputError(f"--alarm: {args.alarm[:40]!r} is not an alarm id (32 hex digits, as the "
                                    f"alarm's events carry it)")
        return "alarm.acknowledge", {"alarm": args.alarm} if args.alarm else {}
    if action == "home-landing":
        return "car.home_landing", {"landing": _check_landing(args.landing, "landing")}
    if action == "resident-delete":
        return "resident.delete", {"resident": args.resident}
    if action == "resident-enroll":
        allowed = _landings(args.allowed_landings, "--allowed-landings")
        photos = [_photo(path) for path in args.photos]
        params = {"resident": args.resident, "home_landing": _check_landing(args.home_landing, "--home-landing"),
                  "consent": args.consent, "photos": photos, **({"allowed_landings": allowed} if allowed else {})}
        size = sum(len(photo) for photo in photos)
        if size > MAX_COMMAND_BYTES - 4096:
            raise ConsoleInputError(f"the photos make a command of {size} bytes; a car takes at most "
                                    f"{MAX_COMMAND_BYTES} (send smaller photos, or fewer)")
        return "resident.enroll", params
    if action == "face-disable":
        return "face.disable", {"wipe": True} if args.wipe else {}
    if action == "permissions":
        free = _landings(args.free_landings, "--free-landings")
        return "permissions.set", {"enabled": args.state == "on", **({"free_landings": free} if free else {})}
    return {"face-enable": "face.enable", "config-get": "config.get"}[action], {}


def _discover_cars(client: Any, messages: queue.Queue[tuple[str, bytes]], community: str) -> list[str]:
    """Every car of the community that has published its (retained) state."""
    client.subscribe(f"carctl/{community}/+/state", qos=1)
    cars = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            topic, _ = messages.get(timeout=0.1)
        except queue.Empty:
            continue
        parts = topic.split("/")
        if len(parts) == 4 and parts[3] == "state" and id_problem("car", parts[2]) is None:
            cars.add(parts[2])
    client.unsubscribe(f"carctl/{community}/+/state")
    return sorted(cars)


def _send(client: Any, messages: queue.Queue[tuple[str, bytes]], args: argparse.Namespace, key: bytes, kind: str,
          params: dict[str, Any]) -> int:
    cars = [args.car] if args.car != "*" else _discover_cars(client, messages, args.community)
    if not cars:
        print(f"carctl platform: no car of {args.community} has reported its state; give --car", file=sys.stderr)
        return EXIT_NO_ANSWER
    # One command for every car under the community key; with per-car keys, one per car, each signed for that car.
    shared = build_command(kind, args.community, args.car, params, key)
    sent = {car: build_command(kind, args.community, car, params, car_key(key, args.community, car))
            if args.per_car_keys else shared for car in cars}
    client.subscribe(f"carctl/{args.community}/+/ack", qos=1)
    time.sleep(0.2)
    for car, command in sent.items():
        try:
            client.publish(f"carctl/{args.community}/{car}/cmd", json.dumps(command), qos=1).wait_for_publish(
                timeout=args.timeout)
        except (RuntimeError, ValueError) as error:  # paho: the connection went while publishing
            print(f"carctl platform: error: the broker connection was lost ({error})", file=sys.stderr)
            return EXIT_NO_ANSWER
    waiting = set(cars)
    refused = False
    deadline = time.monotonic() + args.timeout
    while waiting and time.monotonic() < deadline:
        try:
            topic, payload = messages.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        car = topic.split("/")[2]
        try:
            ack = json.loads(payload)
        except ValueError:
            continue
        if car in waiting and isinstance(ack, dict) and ack.get("id") == sent[car]["id"]:
            waiting.discard(car)
            print(json.dumps({"car": car, **ack}))
            if not ack.get("accepted"):
                refused = True
                print(f"carctl platform: car {car} refused: {str(ack.get('reason'))[:200]}", file=sys.stderr)
    for car in sorted(waiting):
        print(f"carctl platform: no answer from car {car} within {args.timeout} s (it may be offline)",
              file=sys.stderr)
    if waiting:
        return EXIT_NO_ANSWER
    return EXIT_BAD_INPUT if refused else 0


def _watch(client: Any, messages: queue.Queue[tuple[str, bytes]], args: argparse.Namespace) -> int:
    for kind in ("state", "events", "ack"):
        client.subscribe(f"carctl/{args.community}/+/{kind}", qos=1)
    stop_at = time.monotonic() + args.seconds if args.seconds else None
    try:
        while stop_at is None or time.monotonic() < stop_at:
            try:
                topic, payload = messages.get(timeout=0.2)
            except queue.Empty:
                continue
            print(f"{topic} {payload.decode(errors='replace')}", flush=True)
            headline = alarm_headline(topic, payload)
            if headline:
                # On stderr, the operator's terminal: stdout stays one "topic payload" line per message for tools.
                print(headline, file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def alarm_headline(topic: str, payload: bytes) -> str:
    """A line that stands out for a car's alarm or a trapped passenger ("" for any other message, or garbage)."""
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(message, dict) or message.get("kind") not in ("alarm", "trapped_passenger"):
        return ""
    car = topic.split("/")[2] if topic.count("/") >= 3 else "?"
    where = ("between landings" if message.get("between_landings") or message.get("kind") == "trapped_passenger"
             and message.get("cause") == "outside the door zone" else f"at landing {message.get('landing')}")
    alarm_id = message.get("alarm_id")
    what = (f"ALARM {str(message.get('state'))[:20]}"
            + (f" (alarm {alarm_id[:32]})" if isinstance(alarm_id, str) and alarm_id else "")
            if message["kind"] == "alarm"
            else f"TRAPPED PASSENGER for {message.get('waited_s')} s")
    faults = message.get("faults")
    return (f"*** car {car[:64]}: {what}, {where}, {message.get('position_m')} m, {message.get('load_kg')} kg"
            f"{', faults ' + ', '.join(str(f)[:40] for f in faults[:8]) if isinstance(faults, list) and faults else ''}"
            f" ***")
