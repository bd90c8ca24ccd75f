// What a function instance keeps from one event to the next (logHeartbeat's memory of each host, say). It is
// made on the instance's first event, not when its module loads: building it then costs a cold start nothing.
export interface PerInstance<T> {
  /** This instance's, made on first use. */
  get(): T;
  /**
   * Starts over as a new instance would: made anew on next use. The local stack and the tests serve every
   * function in one process; this is how they stand for an instance Cloud Functions replaced.
   */
  renew(): void;
}

export function perInstance<T>(make: () => T): PerInstance<T> {
  let value: T | undefined;
  return {
    get: () => (value ??= make()),
    renew: () => {
      value = undefined;
    },
  };
}
