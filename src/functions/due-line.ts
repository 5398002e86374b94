/** An entry of a DueLine: what is due when, ordered by `due` and then `id`. */
export interface DueEntry {
  id: number;
  due: number;
}

/**
 * Entries kept in order of due time (then id), taken from the front. Taking is O(1) (a moving start
 * index, compacted once half the array is taken); inserting is a binary search, and a push when the
 * entry is due last, as fresh events are. A plain array's shift() copies the whole array once it is
 * large (tens of thousands of queued events), which made every dispatch O(queue length).
 */
export class DueLine<T extends DueEntry> {
  /** Slots before `start` are taken: emptied, so that what a taken entry holds (a fresh event's 1 MiB body) is not kept until the next compaction. */
  private entries: Array<T | undefined> = [];
  private start = 0;

  get length(): number {
    return this.entries.length - this.start;
  }

  first(): T | undefined {
    return this.entries[this.start];
  }

  shift(): T | undefined {
    if (this.start >= this.entries.length) return undefined;
    const entry = this.entries[this.start];
    this.entries[this.start++] = undefined;
    if (this.start >= 1024 && this.start * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
    return entry;
  }

  insert(entry: T): void {
    const { entries } = this;
    const last = entries[entries.length - 1];
    if (entries.length === this.start || before(last!, entry)) {
      entries.push(entry);
      return;
    }
    let low = this.start;
    let high = entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (before(entries[middle]!, entry)) low = middle + 1;
      else high = middle;
    }
    entries.splice(low, 0, entry);
  }

  clear(): void {
    this.entries = [];
    this.start = 0;
  }

  /** Removes the entries `matches` picks and returns them, in order. */
  remove(matches: (entry: T) => boolean): T[] {
    const kept: T[] = [];
    const removed: T[] = [];
    for (let i = this.start; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      (matches(entry) ? removed : kept).push(entry);
    }
    this.entries = kept;
    this.start = 0;
    return removed;
  }

  [Symbol.iterator](): Iterator<T> {
    return (this.entries.slice(this.start) as T[])[Symbol.iterator]();
  }
}

function before(a: DueEntry, b: DueEntry): boolean {
  return a.due < b.due || (a.due === b.due && a.id < b.id);
}
