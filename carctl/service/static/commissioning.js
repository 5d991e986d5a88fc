// The Commissioning page: the learning run's and the brake test's progress and the latched faults, from the service
// tool's live stream (the loop's live state, about 10 a second). Plain JavaScript, no library. The sentences for the
// car's reasons come with the page (carctl/service/commissioning.py), so the page and the server say the same.
"use strict";

const root = document.getElementById("commissioning");
const landings = Number(root.dataset.landings);
const reasons = JSON.parse(root.dataset.reasons);

function text(id, value) {
  const node = document.getElementById(id);
  if (node.textContent !== value) node.textContent = value;
}

// A LEARNING or BRAKE_TEST event's detail ("refused:not_at_bottom", "passed:2", "done:0.0,2.9") as a sentence.
function sentence(detail) {
  if (!detail) return "none since the controller started";
  const [head, ...rest] = detail.split(":");
  const more = rest.join(":");
  if (head === "refused" || head === "interrupted") {
    const [why, ...extra] = more.split(":");
    const said = reasons[why] || why.replaceAll("_", " ");
    return `${head}: ${said}` + (extra.length ? ` (${extra.join(":")})` : "");
  }
  if (head === "passed") return `passed: the car moved ${more} mm under the test torque`;
  if (head === "slipped") return `FAILED: the brake slipped ${more} mm (brake_slipping latched: repair the brake)`;
  if (head === "done") return `done: landings at ${more.split(",").join(", ")} m`;
  return reasons[detail] || detail;
}

function draw(live) {
  text("mode", live.mode);
  text("phase", live.phase);
  text("position", `${live.position_m.toFixed(3)} m (landing ${live.position_landing})`);
  text("door", live.door + (live.door_locked ? ", locked" : ""));
  const learning = live.mode === "learning";
  text("learning-state", learning ? "running: going up the shaft at inspection speed" : "not running");
  text("learning-found", learning ? `${live.learning_found} of ${landings}` : "–");
  text("learning-last", sentence(live.learning_last));
  const stage = {"": "not running", asked: "running: waiting for the drive to hold the test torque",
    holding: "running: the drive holds the test torque against the closed brake"}[live.brake_test];
  text("brake-test-state", stage || live.brake_test);
  text("brake-test-last", sentence(live.brake_test_last));
  text("latched-faults", live.latched_faults.join(", ") || "none");
  document.getElementById("latched-faults").classList.toggle("error", live.latched_faults.length > 0);
  text("active-faults", live.faults.join(", ") || "none");
}

const stream = new EventSource("/live/stream");
stream.onmessage = message => {
  const snapshot = JSON.parse(message.data);
  document.getElementById("stale").hidden = !snapshot.stale;
  if (snapshot.live) draw(snapshot.live);
};
stream.addEventListener("ended", () => { stream.close(); window.location.assign("/login"); });
