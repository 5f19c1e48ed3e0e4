/** An unspent output, with the metadata Core keeps (creation height, coinbase). */
export interface Coin {
  readonly value: bigint;
  readonly height: number;
  readonly coinbase: boolean;
  readonly script: Buffer;
}

export type RegStatus = 'active' | 'expired' | 'lapsed';

/** One registration: from an accepted OP_NEWNODE until it expires or lapses. */
export interface Registration {
  readonly stakeScript: Buffer;
  readonly firstHeight: number;
  /** Position of the OP_NEWNODE transaction in its block (coinbase = 0). */
  readonly firstIndex: number;
  readonly firstTxid: Buffer;
  tipHeight: number;
  tipTxid: Buffer;
  timestamp: number;
  renewals: number;
  expiryHeight: number;
  status: RegStatus;
  endedHeight: number | null;
}

export type EventKind = 'registered' | 'renewed' | 'expired' | 'lapsed';

/** One entry of a stake script's history. */
export interface RegistryEvent {
  readonly kind: EventKind;
  readonly height: number;
  /** Transaction position for registered/renewed; 0xffffffff for end-of-block events. */
  readonly txIndex: number;
  readonly firstHeight: number;
  readonly firstIndex: number;
  /** The announcing transaction, or null for end-of-block events. */
  readonly txid: Buffer | null;
  readonly timestamp: number;
  readonly expiryHeight: number;
}

/** What happened to one announcement attempt. */
export interface Outcome {
  readonly height: number;
  readonly txIndex: number;
  readonly vout: number;
  readonly kind: 'newnode' | 'renewal' | null;
  /** null when accepted. */
  readonly reason: string | null;
}

export interface Tip {
  readonly height: number;
  readonly hash: Buffer;
}
