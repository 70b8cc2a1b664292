/**
 * The control block shared by the main thread and the KVM worker (a SharedArrayBuffer).
 * The main thread asks the running vCPU to stop by writing a request here, setting
 * kvm_run.immediate_exit and signalling the vCPU thread; the worker reads and clears it when
 * KVM_RUN returns EINTR.
 */
export const enum StopRequest {
  None = 0,
  Pause = 1,
  TimeLimit = 2,
}

const SLOT_STOP = 0;
/** KVM_RUN entries so far (the worker adds one before each). */
const SLOT_ENTRIES = 1;
/** Non-zero while the main thread waits on SLOT_ENTRIES (the worker then notifies). */
const SLOT_WAITER = 2;
const SLOTS = 4;

export class ControlBlock {
  readonly words: Int32Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.words = new Int32Array(buffer);
  }
  requestStop(reason: StopRequest): void {
    // A time limit outranks a pause: never downgrade.
    Atomics.compareExchange(this.words, SLOT_STOP, StopRequest.None, reason);
    if (reason === StopRequest.TimeLimit) Atomics.store(this.words, SLOT_STOP, reason);
  }
  /** Drops a stale pause request (one that arrived after the run it was meant for had ended). */
  dropStalePause(): boolean {
    return Atomics.compareExchange(this.words, SLOT_STOP, StopRequest.Pause, StopRequest.None) === StopRequest.Pause;
  }
  takeStop(): StopRequest {
    return Atomics.exchange(this.words, SLOT_STOP, StopRequest.None) as StopRequest;
  }
  peekStop(): StopRequest {
    return Atomics.load(this.words, SLOT_STOP) as StopRequest;
  }
  /** Worker: about to enter KVM_RUN. A notify only when someone waits (it costs a futex call). */
  noteEntry(): void {
    Atomics.add(this.words, SLOT_ENTRIES, 1);
    if (Atomics.load(this.words, SLOT_WAITER) !== 0) Atomics.notify(this.words, SLOT_ENTRIES);
  }
  entries(): number {
    return Atomics.load(this.words, SLOT_ENTRIES);
  }
  /**
   * Main thread: blocks until the worker has entered KVM_RUN since `since` entries were counted
   * (true), or `timeoutMs` passed (false). For host-time probes only: it blocks the event loop.
   */
  waitForEntry(since: number, timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs;
    Atomics.store(this.words, SLOT_WAITER, 1);
    try {
      while (Atomics.load(this.words, SLOT_ENTRIES) === since) {
        const left = deadline - performance.now();
        if (left <= 0) return false;
        Atomics.wait(this.words, SLOT_ENTRIES, since, left);
      }
      return true;
    } finally {
      Atomics.store(this.words, SLOT_WAITER, 0);
    }
  }
}
