// The live car: the shaft drawn in SVG, updated from the service tool's event stream (server-sent events, about
// 10 a second). Plain JavaScript, no library: everything the page needs is served by the board.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const shaft = document.getElementById("shaft");
const landings = JSON.parse(shaft.dataset.landings);
const top_m = landings[landings.length - 1];
const CAR_HEIGHT = 34, MARGIN = 24, HEIGHT = 400;
const DOOR_OPEN = {closed: 0, opening: 0.5, open: 1, closing: 0.5};

function y_of(position_m) {
  const span = top_m > 0 ? top_m : 1;
  return HEIGHT - MARGIN - (position_m / span) * (HEIGHT - 2 * MARGIN - CAR_HEIGHT) - CAR_HEIGHT;
}

function element(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  (parent || shaft).appendChild(node);
  return node;
}

element("rect", {x: 40, y: 4, width: 60, height: HEIGHT - 8, class: "shaft-wall"});
const marks = landings.map((height_m, index) => {
  const y = y_of(height_m) + CAR_HEIGHT;
  element("line", {x1: 36, x2: 104, y1: y, y2: y, class: "landing-line"});
  const label = element("text", {x: 8, y: y - 4, class: "landing-label"});
  label.textContent = String(index);
  return {
    up: element("path", {d: `M112 ${y - 22} l6 -8 l6 8 z`, class: "hall up", id: `hall-up-${index}`}),
    down: element("path", {d: `M112 ${y - 16} l6 8 l6 -8 z`, class: "hall down", id: `hall-down-${index}`}),
    car: element("circle", {cx: 140, cy: y - 12, r: 6, class: "car-call", id: `car-call-${index}`}),
  };
});
const car = element("g", {id: "car"});
element("rect", {x: 46, y: 0, width: 48, height: CAR_HEIGHT, class: "car-body"}, car);
const doorLeft = element("rect", {x: 46, y: 2, width: 24, height: CAR_HEIGHT - 4, class: "door"}, car);
const doorRight = element("rect", {x: 70, y: 2, width: 24, height: CAR_HEIGHT - 4, class: "door"}, car);
const arrow = element("text", {x: 70, y: 22, class: "arrow", "text-anchor": "middle"}, car);

function text(id, value) {
  const node = document.getElementById(id);
  if (node.textContent !== value) node.textContent = value;
}

function lit(node, on) { node.classList.toggle("lit", Boolean(on)); }

function draw(live) {
  car.setAttribute("transform", `translate(0 ${y_of(live.position_m).toFixed(1)})`);
  const open = DOOR_OPEN[live.door] ?? 0;
  doorLeft.setAttribute("width", (24 * (1 - open)).toFixed(1));
  doorRight.setAttribute("x", (70 + 24 * open).toFixed(1));
  doorRight.setAttribute("width", (24 * (1 - open)).toFixed(1));
  arrow.textContent = live.direction > 0 ? "▲" : live.direction < 0 ? "▼" : "";
  marks.forEach((mark, index) => {
    lit(mark.up, live.hall_up_lamps.includes(index));
    lit(mark.down, live.hall_down_lamps.includes(index));
    lit(mark.car, live.car_call_lamps.includes(index));
  });
  text("mode", live.mode);
  text("phase", live.phase);
  text("position", `${live.position_m.toFixed(3)} m (landing ${live.position_landing})`);
  text("speed", `${live.speed_m_s.toFixed(2)} m/s`);
  text("direction", live.direction > 0 ? "up" : live.direction < 0 ? "down" : "none");
  text("door", live.door + (live.door_locked ? ", locked" : ""));
  text("load", `${live.load_kg} kg` + (live.overload_lamp ? " OVERLOAD" : ""));
  text("seat", live.seat_occupied ? "occupied" : "free");
  text("car-calls", live.car_calls.join(", ") || "none");
  text("hall-calls", [...live.hall_up.map(l => `${l}▲`), ...live.hall_down.map(l => `${l}▼`)].join(" ") || "none");
  text("alarm", live.alarm);
  text("faults", live.faults.join(", ") || "none");
  document.getElementById("faults").classList.toggle("error", live.faults.length > 0);
  text("lag", `${live.lag_p99_ms} ms`);
}

const HEALTH_SHOWN = ["lag_p50_ms", "lag_p99_ms", "missed_cycles", "cycle_p99_ms", "drive_errors",
  "panel_timeouts", "panel_bad_crc", "waiting_for", "loop_errors", "side_channels_unavailable", "service_feed"];

function drawHealth(health) {
  const table = document.getElementById("health");
  const rows = HEALTH_SHOWN.filter(key => key in health).map(key => {
    const value = health[key];
    return [key, value !== null && typeof value === "object" ? JSON.stringify(value) : String(value)];
  });
  const signature = JSON.stringify(rows);
  if (table.dataset.signature === signature) return;
  table.dataset.signature = signature;
  table.replaceChildren(...rows.map(([key, value]) => {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.textContent = key;
    const cell = document.createElement("td");
    cell.textContent = value;
    row.append(name, cell);
    return row;
  }));
}

const stream = new EventSource("/live/stream");
stream.onmessage = message => {
  const snapshot = JSON.parse(message.data);
  document.getElementById("stale").hidden = !snapshot.stale;
  if (snapshot.live) draw(snapshot.live);
  if (snapshot.health) drawHealth(snapshot.health);
};
stream.addEventListener("ended", () => { stream.close(); window.location.assign("/login"); });
