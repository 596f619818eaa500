// When the language server dies: restart it, but at most a few times in a row. A run that stayed
// up for `healthyMs` counts as healthy and starts a new row. Plain module (unit-tested).

export interface RestartDecision {
  restart: boolean;
  /** 1-based number of this restart in the current row (when restarting). */
  attempt: number;
  message?: string;
}

export class RestartPolicy {
  private crashesInRow = 0;
  private startedAt: number | undefined;

  constructor(
    readonly maxRestarts = 3,
    readonly healthyMs = 60_000,
  ) {}

  /** The server is up (the client reached its running state). */
  onRunning(now: number): void {
    this.startedAt = now;
  }

  /** The connection closed without us asking for it. */
  onClosed(now: number): RestartDecision {
    if (this.startedAt !== undefined && now - this.startedAt >= this.healthyMs) {
      this.crashesInRow = 0;
    }
    this.startedAt = undefined;
    this.crashesInRow += 1;
    if (this.crashesInRow <= this.maxRestarts) {
      return { restart: true, attempt: this.crashesInRow };
    }
    return {
      restart: false,
      attempt: this.crashesInRow,
      message:
        `nearcode: the language server stopped ${this.crashesInRow} times in a row and will not be ` +
        'restarted. See "nearcode: Open Log", then run "nearcode: Restart Language Server".',
    };
  }

  /** A restart asked for by the user starts a new row. */
  reset(): void {
    this.crashesInRow = 0;
    this.startedAt = undefined;
  }

  get crashes(): number {
    return this.crashesInRow;
  }
}
