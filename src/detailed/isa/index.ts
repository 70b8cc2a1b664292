/** Loads every ISA file so its builders register themselves. */
import './core.js';
import './int-move.js';
import './int-shift.js';
import './int-muldiv.js';
import './int-bits.js';
import './int-string.js';
import './int-misc.js';
import './sse-fp.js';
import './sse-move.js';
import './sse-int.js';
import './sse-string.js';
import './x87.js';
import './x87-arith.js';
import './sse-approx.js';
