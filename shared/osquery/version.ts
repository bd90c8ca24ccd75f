/** The osquery version this project pins: the bundle is written for it, its schema ships in the repository. */
export const PINNED_OSQUERY_VERSION = '5.23.1';
