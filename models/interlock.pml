/*
 * carctl: the door and motion interlock and the collective dispatch, as a Promela model checked with spin.
 *
 * What it corresponds to in the Python core (docs/verification.md has the full correspondence):
 *   door            carctl/core/door.py DoorPhase; door_step() below is door.TRANSITIONS line for line (a test
 *                   parses the lines marked TRANSITION and compares them with the Python table). It is the door
 *                   machine of the landing's doorway (core/sides.py): its limits are the readings of the doors
 *                   serving the landing (open: each of them open; closed: every door closed and locked)
 *   front, rear     the car's two door operators (building.door_sides), each LOCKED, AJAR or WIDE open as its
 *                   limits and lock contacts read; the operators process moves each a step at a time towards what
 *                   the door machine commands its side: open while the machine opens or is open and the side
 *                   serves the landing, closed otherwise (sides.split), and opens only at a landing (the operator's
 *                   own door-zone interlock)
 *   side[]          the side(s) serving each landing (FRONT, REAR or both), as building.door_sides: front, rear,
 *                   both, rear
 *   drive_run, moving  the drive's run command and the car moving (controller phases STARTING/RUNNING)
 *   interlock       supervisor.enforce(): no run unless both doors are closed and locked (relevelling with open
 *                   doors inside the door zone below 0.3 m/s is outside this model: it never leaves the landing)
 *   dispatch        dispatch.next_stop / departure_direction: serve calls ahead in the travel direction, reverse
 *                   only when none is ahead, open the doors for a call at the landing
 *   environment     passengers press buttons at any time; the doors may be obstructed or slow, but a door cycle
 *                   ends: the light curtain is overridden by nudging after NUDGE_AFTER obstructions and the door
 *                   reaches its limits after at most RETRIES protection timeouts per stop (the "no fault active"
 *                   assumption of the liveness property: a door that never works raises a fault instead)
 *   eager start     the logic may ask for a run as soon as the doors begin to close (as a controller that
 *                   starts on the close command rather than on the lock would); only the interlock stops it, so
 *                   the safety property checks the supervisor, not the care of the logic
 *   stop at once    a transient stop-at-once fault (lost drive answers, a drive trip) may strike a running car up
 *                   to STOPS times: the brake drops and the car slides on it (sliding) until it is at rest; the car
 *                   is settling (core/standstill.py) from the stop until it has been seen at rest, and the
 *                   interlock drops any run while it settles (supervisor.enforce(settling=...)); the logic is again
 *                   eager, asking to run on at once
 *
 * Properties: safe (the car never moves, under the drive or sliding, with either door not closed and locked),
 * lift_at_rest (the brake is never lifted, a run never begun, while the car slides on its brake after a stop) and
 * serve_top / serve_bottom (a call is eventually served, under weak fairness, after at most STOPS stops), checked by
 * tests/core/test_formal_model.py on every `make test`.
 */

#define N 4            /* landings */
#define NUDGE_AFTER 2  /* obstructions of one door cycle before the door nudges closed */
#define RETRIES 1      /* protection timeouts of one door cycle before the door reaches its limit */
#define STOPS 1        /* transient stops at once in a run of the model (liveness needs the faults to end) */
#define LOCKED 0       /* a door operator's door: closed and locked */
#define AJAR 1         /* between its limits */
#define WIDE 2         /* at its open limit */
#define FRONT 1        /* side[] bits: the landing is served by the front door, the rear door, or both */
#define REAR 2

mtype = { CLOSED, OPENING, OPEN, CLOSING };
mtype = { OPEN_REQUEST, OPEN_LIMIT, OPEN_TIMEOUT, CLOSE_REQUEST, NUDGE, REOPEN, CLOSED_LIMIT, CLOSE_TIMEOUT };

mtype door = CLOSED;
byte pos = 0;          /* the landing the car is at, or last passed */
bool drive_run = false;  /* the drive's run command, after the supervisor */
bool moving = false;
byte dir = 0;          /* 0 none, 1 up, 2 down */
bool call[N];
byte blocked = 0;      /* obstructions during this stop */
byte timeouts = 0;     /* protection timeouts during this stop */
bool sliding = false;  /* moving on the closed brake after a stop at once */
bool settling = false; /* after a stop at once, until the car has been seen at rest for the settling time */
byte stops = 0;        /* stops at once so far */
byte front = LOCKED;   /* the two door operators' doors, as their limits and lock contacts read */
byte rear = LOCKED;
byte side[N];          /* the side(s) serving each landing: FRONT, REAR or both; set once by car() */

inline door_step(stim) {
    if
    :: door == CLOSED && stim == OPEN_REQUEST -> door = OPENING        /* TRANSITION */
    :: door == OPENING && stim == OPEN_LIMIT -> door = OPEN            /* TRANSITION */
    :: door == OPENING && stim == OPEN_TIMEOUT -> door = CLOSING       /* TRANSITION */
    :: door == OPEN && stim == CLOSE_REQUEST -> door = CLOSING         /* TRANSITION */
    :: door == OPEN && stim == NUDGE -> door = CLOSING                 /* TRANSITION */
    :: door == CLOSING && stim == REOPEN -> door = OPENING             /* TRANSITION */
    :: door == CLOSING && stim == CLOSED_LIMIT -> door = CLOSED        /* TRANSITION */
    :: door == CLOSING && stim == CLOSE_TIMEOUT -> door = OPENING      /* TRANSITION */
    :: else -> skip
    fi
}

/* Calls ahead of the car in direction d (1 up, 2 down), beyond its landing. */
inline ahead(d, result) {
    result = false;
    i = 0;
    do
    :: i < N ->
        if
        :: call[i] && ((d == 1 && i > pos) || (d == 2 && i < pos)) -> result = true
        :: else -> skip
        fi;
        i++
    :: else -> break
    od
}

/* The door machine's limits, from the doors serving the landing (core/sides.py doorway()). */
#define open_limit ((!(side[pos] & FRONT) || front == WIDE) && (!(side[pos] & REAR) || rear == WIDE))
#define closed_limit (front == LOCKED && rear == LOCKED)
/* What the door machine commands a side's operator (sides.split): open while it opens or is open, if the side
 * serves the landing; otherwise closed. */
#define commanded_open(bit) ((door == OPENING || door == OPEN) && (side[pos] & bit))

/* The supervisor has the last word: a run is dropped unless both doors are closed and locked (what their contacts
 * read, not what the logic thinks), and while the car settles after a stop at once. */
inline interlock() {
    drive_run = (drive_run && front == LOCKED && rear == LOCKED && !settling)
}

active proctype passengers() {
    byte j;
    do
    :: j = 0;
       do
       :: j < N - 1 -> j++
       :: break
       od;
       /* A press at the landing where the car stands is the door-open button; the controller handles it below. */
       atomic { !call[j] && !(j == pos && !moving) -> call[j] = true }
    od
}

/* The car on its brake after a stop at once: it comes to rest, and is then seen at rest for the settling time (its
 * own process, so that the car's eager logic cannot hold time still). */
active proctype brake() {
    do
    :: atomic { sliding -> sliding = false }                 /* at rest on the brake */
    :: atomic { !sliding && settling -> settling = false }   /* seen at rest for the settling time */
    od
}

/* The two door operators: each moves its door a step towards what it is commanded; a door opens only with the car
 * standing at a landing (the operator's own door-zone interlock). */
active proctype operators() {
    do
    :: atomic { commanded_open(FRONT) && front != WIDE && !moving && !sliding -> front++ }
    :: atomic { !commanded_open(FRONT) && front != LOCKED -> front-- }
    :: atomic { commanded_open(REAR) && rear != WIDE && !moving && !sliding -> rear++ }
    :: atomic { !commanded_open(REAR) && rear != LOCKED -> rear-- }
    od
}

active proctype car() {
    byte i;
    bool up_ahead, down_ahead;
    /* The half-landing building in small: front, rear, both and rear again, so that the car passes between every
     * kind of landing, and each door is both the serving and the idle one somewhere. (Choosing each landing's side
     * freely also holds, but takes the checker a few minutes a property.) */
    atomic { side[0] = FRONT; side[1] = REAR; side[2] = FRONT + REAR; side[3] = REAR }
    do
    :: atomic {
        if
        :: moving && stops < STOPS ->
            /* A stop at once: the brake drops, the car slides on it; the fault clears at once, and the logic
             * asks to run on. */
            stops++; moving = false; sliding = true; settling = true; drive_run = true
        :: moving ->
            /* One landing further in the travel direction; stop where a call waits or at a terminal. */
            if
            :: dir == 1 -> pos++
            :: dir == 2 -> pos--
            fi;
            if
            :: call[pos] || pos == 0 || pos == N - 1 -> drive_run = false; moving = false
            :: else -> skip
            fi
        :: !moving && door == CLOSED ->
            if
            :: call[pos] && !sliding -> door_step(OPEN_REQUEST)   /* no door opens on a car still sliding */
            :: else ->
                ahead(1, up_ahead);
                ahead(2, down_ahead);
                if
                :: up_ahead || down_ahead -> blocked = 0; timeouts = 0   /* a new stop's door budget */
                :: else -> skip
                fi;
                if
                :: dir != 2 && up_ahead -> dir = 1; drive_run = true
                :: dir != 1 && down_ahead -> dir = 2; drive_run = true
                :: dir == 1 && !up_ahead && down_ahead -> dir = 2; drive_run = true
                :: dir == 2 && !down_ahead && up_ahead -> dir = 1; drive_run = true
                :: !up_ahead && !down_ahead -> dir = 0
                fi
            fi
        :: !moving && door == OPENING ->
            if
            :: open_limit -> door_step(OPEN_LIMIT); call[pos] = false   /* the call is served as the doors open */
            :: timeouts < RETRIES -> timeouts++; door_step(OPEN_TIMEOUT)
            fi
        :: !moving && door == OPEN ->
            if
            :: blocked < NUDGE_AFTER -> blocked++       /* the light curtain holds the doors */
            :: blocked < NUDGE_AFTER -> door_step(CLOSE_REQUEST)
            :: blocked >= NUDGE_AFTER -> door_step(NUDGE)
            fi
        :: !moving && door == CLOSING ->
            /* Eager start towards a call ahead: refused by the interlock below unless the doors lock this step. */
            ahead(dir, up_ahead);
            if
            :: dir != 0 && up_ahead -> drive_run = true
            :: skip
            fi;
            if
            :: closed_limit -> door_step(CLOSED_LIMIT)
            :: blocked < NUDGE_AFTER -> blocked++; door_step(REOPEN)
            :: timeouts < RETRIES -> timeouts++; door_step(CLOSE_TIMEOUT)
            fi
        fi;
        interlock();
        if
        :: drive_run && !moving -> moving = true
        :: else -> skip
        fi
    }
    od
}

/* The car never moves with any door that is not closed and locked: neither the front nor the rear one. */
ltl safe { [] ((moving || sliding) -> (front == LOCKED && rear == LOCKED)) }
/* The brake is never lifted (a run never begun) on a car still sliding on it after a stop at once. */
ltl lift_at_rest { [] (sliding -> !moving) }
/* With no fault active, every call is eventually served: checked for the terminal landings, the farthest apart. */
ltl serve_top { [] (call[N - 1] -> <> (pos == N - 1 && door == OPEN)) }
ltl serve_bottom { [] (call[0] -> <> (pos == 0 && door == OPEN)) }
