/** Loads every ISA file so its builders register themselves. */
import './core.js';
