/**
 * Cloud images that installs share, in this process. An image is one file on a node's storage
 * (`local:import/debian-12-genericcloud-amd64.qcow2`), keyed by (PVE cluster, node, storage,
 * file). Two things are tracked per key:
 *
 * - the download in flight, single-flight like the client's login (packages/proxmox/src/auth.ts):
 *   the first install that finds the file missing starts PVE's `download-url` and every install
 *   that asks meanwhile waits for that same task, so one image is fetched once;
 * - which installs use the file now: from their download stage until their VM has imported it
 *   (`import-from` copies the image into the VM's own disk, so after that the file is not theirs).
 *
 * The install that started a download registers an undo that deletes the file; the undo deletes
 * it only when no other install of this process uses it then. Installs of another vmplane process
 * are not seen: a deployment with several replicas should pre-seed images or accept that a failed
 * install there may remove a file another replica is about to import (the import then fails and
 * that install is undone too, never left half made).
 */

export interface DownloadResult {
  volid: string;
  /** True when this key's file was fetched by the flight (false: it was on the storage already). */
  downloaded: boolean;
}

export class SharedDownloads {
  readonly #flights = new Map<string, Promise<DownloadResult>>();
  readonly #users = new Map<string, Set<string>>();

  /** Marks `operation` as using the file at `key` until `release`. */
  use(key: string, operation: string): void {
    let set = this.#users.get(key);
    if (!set) {
      set = new Set();
      this.#users.set(key, set);
    }
    set.add(operation);
  }

  release(key: string, operation: string): void {
    const set = this.#users.get(key);
    if (!set) return;
    set.delete(operation);
    if (set.size === 0) this.#users.delete(key);
  }

  /** Installs other than `operation` using the file now. */
  othersUsing(key: string, operation: string): string[] {
    return [...(this.#users.get(key) ?? [])].filter((o) => o !== operation);
  }

  /** Whether a download of `key` is in flight. */
  inFlight(key: string): boolean {
    return this.#flights.has(key);
  }

  /**
   * Runs `fetch` unless a flight for `key` runs already, in which case the caller waits for that
   * one. `joined` says which: only the caller that ran `fetch` (joined false) made the file.
   * `wait` bounds this caller's waiting only, never the shared flight.
   */
  async ensure(
    key: string,
    fetch: () => Promise<DownloadResult>,
    wait: (flight: Promise<DownloadResult>) => Promise<DownloadResult> = (f) => f,
  ): Promise<DownloadResult & { joined: boolean }> {
    const running = this.#flights.get(key);
    if (running) return { ...(await wait(running)), joined: true };
    const flight = fetch().finally(() => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    });
    this.#flights.set(key, flight);
    // A waiter that gave up must not leave the flight's failure unhandled.
    flight.catch(() => {});
    return { ...(await wait(flight)), joined: false };
  }
}

/** One registry per process, shared by every Proxmox provider in it. */
export const sharedDownloads = new SharedDownloads();
