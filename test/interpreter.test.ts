import { detectAnnouncement, encodeCarrier, type Announcement, type Attempt } from '../script/carrier.js';
import { interpret, isLive, judgeAttempts, type InterpretContext, type RegistrationView } from '../script/interpreter.js';
import { BUILTIN_NETWORKS, type NetworkParams } from '../script/params.js';

const params = BUILTIN_NETWORKS.regtest!;
const MIN = params.minStake;
const T = 1_700_000_000; // block time
const H = 1000; // block height

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const STAKE = Buffer.from('0014751e76e8199196d454941c45d1b3a323f1433bd6', 'hex');
const OTHER_STAKE = Buffer.from('5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c', 'hex');
/** The same key hash as STAKE, but P2PKH: a different script, so a different stake. */
const SAME_HASH_P2PKH = Buffer.from('76a914751e76e8199196d454941c45d1b3a323f1433bd688ac', 'hex');
const TIP = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff', 'hex');
const OTHER_TIP = Buffer.alloc(32, 0x42);

/**
 * An in-memory chain state: which scripts the transaction spends, balances
 * after it, and current registrations, keyed by script hex.
 */
interface World {
  height?: number;
  blockTime?: number;
  isCoinbase?: boolean;
  spends?: Uint8Array[];
  balances?: Array<[Uint8Array, bigint]>;
  registrations?: Array<[Uint8Array, RegistrationView]>;
}

function context(w: World = {}): InterpretContext {
  const spends = new Set((w.spends ?? [STAKE]).map(hex));
  const balances = new Map((w.balances ?? [[STAKE, MIN]]).map(([s, v]) => [hex(s), v]));
  const regs = new Map((w.registrations ?? []).map(([s, r]) => [hex(s), r]));
  return {
    height: w.height ?? H,
    blockTime: w.blockTime ?? T,
    isCoinbase: w.isCoinbase ?? false,
    spendsScript: (s) => spends.has(hex(s)),
    balanceAfter: (s) => balances.get(hex(s)) ?? 0n,
    registration: (s) => regs.get(hex(s)) ?? null,
  };
}

const newnode = (over: Partial<{ stakeScript: Uint8Array; timestamp: number }> = {}): Announcement =>
  ({ kind: 'newnode', stakeScript: STAKE, timestamp: T, ...over });
const renewal = (over: Partial<{ stakeScript: Uint8Array; timestamp: number; prevTxid: Uint8Array }> = {}): Announcement =>
  ({ kind: 'renewal', stakeScript: STAKE, timestamp: T, prevTxid: TIP, ...over });

/** A live registration whose tip is TIP, announced an hour before T. */
const live = (over: Partial<RegistrationView> = {}): RegistrationView =>
  ({ tipTxid: TIP, timestamp: T - 3600, expiryHeight: H + 10, ended: false, ...over });

const registered = (reg: RegistrationView, w: World = {}): InterpretContext =>
  context({ registrations: [[STAKE, reg]], ...w });

const verdict = (a: Announcement, ctx: InterpretContext, p: NetworkParams = params) => interpret(a, ctx, p);
const ACCEPTED = { accepted: true };
const rejected = (reason: string) => ({ accepted: false, reason });

describe('one announcement per transaction (judgeAttempts)', () => {
  const good = (ts: number): Attempt => detectAnnouncement(encodeCarrier(newnode({ timestamp: ts })))!;
  const flawed: Attempt = { ok: false, reason: 'BAD_TIMESTAMP' };

  test('a single well-formed attempt is passed on to be interpreted', () => {
    const [only] = judgeAttempts([{ vout: 1, attempt: good(T) }]);
    expect(only).toMatchObject({ vout: 1, reason: null });
    expect(only!.announcement).not.toBeNull();
  });

  test('a single flawed attempt keeps its decoding reason', () => {
    expect(judgeAttempts([{ vout: 0, attempt: flawed }])).toEqual([{ vout: 0, announcement: null, reason: 'BAD_TIMESTAMP' }]);
  });

  test('two well-formed attempts are both rejected as MULTIPLE_ANNOUNCEMENTS', () => {
    const judged = judgeAttempts([{ vout: 0, attempt: good(T) }, { vout: 2, attempt: good(T + 1) }]);
    expect(judged.map((j) => [j.vout, j.reason])).toEqual([[0, 'MULTIPLE_ANNOUNCEMENTS'], [2, 'MULTIPLE_ANNOUNCEMENTS']]);
  });

  test('beside a well-formed attempt, a flawed one keeps its own reason and the well-formed one is MULTIPLE_ANNOUNCEMENTS', () => {
    const judged = judgeAttempts([{ vout: 0, attempt: flawed }, { vout: 1, attempt: good(T) }]);
    expect(judged.map((j) => [j.vout, j.reason])).toEqual([[0, 'BAD_TIMESTAMP'], [1, 'MULTIPLE_ANNOUNCEMENTS']]);
  });

  test('two flawed attempts each keep their own reason', () => {
    const other: Attempt = { ok: false, reason: 'MALFORMED_CARRIER' };
    const judged = judgeAttempts([{ vout: 3, attempt: flawed }, { vout: 4, attempt: other }]);
    expect(judged.map((j) => j.reason)).toEqual(['BAD_TIMESTAMP', 'MALFORMED_CARRIER']);
  });

  test('a transaction without attempts yields nothing', () => {
    expect(judgeAttempts([])).toEqual([]);
  });
});

describe('contextual checks', () => {
  test('accepts an OP_NEWNODE from the owner with exactly minStake and no registration', () => {
    expect(verdict(newnode(), context())).toEqual(ACCEPTED);
  });

  describe('coinbase', () => {
    test('rejects an announcement in a coinbase transaction', () => {
      expect(verdict(newnode(), context({ isCoinbase: true }))).toEqual(rejected('COINBASE'));
    });

    test('a coinbase with a future timestamp is COINBASE, not TIMESTAMP_IN_FUTURE', () => {
      expect(verdict(newnode({ timestamp: T + 99_999 }), context({ isCoinbase: true }))).toEqual(rejected('COINBASE'));
    });

    test('a coinbase that spends nothing is COINBASE, not NOT_OWNER', () => {
      expect(verdict(renewal(), context({ isCoinbase: true, spends: [], balances: [] }))).toEqual(rejected('COINBASE'));
    });
  });

  describe('timestamp window', () => {
    test('accepts a timestamp exactly futureTolerance (7200 s) after the block time', () => {
      expect(verdict(newnode({ timestamp: T + 7200 }), context())).toEqual(ACCEPTED);
    });

    test('rejects a timestamp 7201 s after the block time as TIMESTAMP_IN_FUTURE', () => {
      expect(verdict(newnode({ timestamp: T + 7201 }), context())).toEqual(rejected('TIMESTAMP_IN_FUTURE'));
    });

    test('accepts a timestamp exactly staleWindow (86400 s) before the block time', () => {
      expect(verdict(newnode({ timestamp: T - 86400 }), context())).toEqual(ACCEPTED);
    });

    test('rejects a timestamp 86401 s before the block time as TIMESTAMP_STALE', () => {
      expect(verdict(newnode({ timestamp: T - 86401 }), context())).toEqual(rejected('TIMESTAMP_STALE'));
    });

    test('a 5-byte timestamp above 2^32 decodes and is then judged by the window', () => {
      const a = detectAnnouncement(encodeCarrier(newnode({ timestamp: 2 ** 32 + 1 })))!;
      expect(a.ok).toBe(true);
      if (a.ok) expect(verdict(a.announcement, context())).toEqual(rejected('TIMESTAMP_IN_FUTURE'));
    });

    test('the window is judged against the block time, whatever the wall clock says', () => {
      const old = 1_300_000_000;
      expect(verdict(newnode({ timestamp: old }), context({ blockTime: old }))).toEqual(ACCEPTED);
    });

    test('the bounds are network parameters', () => {
      const strict: NetworkParams = { ...params, futureTolerance: 0, staleWindow: 10 };
      expect(verdict(newnode({ timestamp: T + 1 }), context(), strict)).toEqual(rejected('TIMESTAMP_IN_FUTURE'));
      expect(verdict(newnode({ timestamp: T - 10 }), context(), strict)).toEqual(ACCEPTED);
      expect(verdict(newnode({ timestamp: T - 11 }), context(), strict)).toEqual(rejected('TIMESTAMP_STALE'));
    });

    test('a timestamp outside the window is rejected before ownership is checked', () => {
      expect(verdict(newnode({ timestamp: T + 7201 }), context({ spends: [] }))).toEqual(rejected('TIMESTAMP_IN_FUTURE'));
      expect(verdict(newnode({ timestamp: T - 86401 }), context({ spends: [] }))).toEqual(rejected('TIMESTAMP_STALE'));
    });
  });

  describe('ownership and stake', () => {
    test('rejects a transaction that spends no output of the stake script as NOT_OWNER', () => {
      expect(verdict(newnode(), context({ spends: [OTHER_STAKE] }))).toEqual(rejected('NOT_OWNER'));
    });

    test('ownership is by exact script: spending a P2PKH of the same key hash is NOT_OWNER', () => {
      expect(verdict(newnode(), context({ spends: [SAME_HASH_P2PKH] }))).toEqual(rejected('NOT_OWNER'));
    });

    test('NOT_OWNER comes before INSUFFICIENT_STAKE', () => {
      expect(verdict(newnode(), context({ spends: [], balances: [] }))).toEqual(rejected('NOT_OWNER'));
    });

    test('accepts a balance of exactly minStake', () => {
      expect(verdict(newnode(), context({ balances: [[STAKE, MIN]] }))).toEqual(ACCEPTED);
    });

    test('rejects a balance of minStake - 1 as INSUFFICIENT_STAKE', () => {
      expect(verdict(newnode(), context({ balances: [[STAKE, MIN - 1n]] }))).toEqual(rejected('INSUFFICIENT_STAKE'));
    });

    test('another script\'s balance does not count', () => {
      expect(verdict(newnode(), context({ balances: [[OTHER_STAKE, MIN * 10n]] }))).toEqual(rejected('INSUFFICIENT_STAKE'));
    });

    test('minStake is a network parameter', () => {
      const cheap: NetworkParams = { ...params, minStake: 1n };
      expect(verdict(newnode(), context({ balances: [[STAKE, 1n]] }), cheap)).toEqual(ACCEPTED);
    });

    test('INSUFFICIENT_STAKE comes before ALREADY_REGISTERED and the renewal checks', () => {
      const poor: World = { balances: [[STAKE, MIN - 1n]] };
      expect(verdict(newnode(), registered(live(), poor))).toEqual(rejected('INSUFFICIENT_STAKE'));
      expect(verdict(renewal(), context(poor))).toEqual(rejected('INSUFFICIENT_STAKE'));
    });
  });

  describe('OP_NEWNODE', () => {
    test('rejects a second OP_NEWNODE while the registration is live as ALREADY_REGISTERED', () => {
      expect(verdict(newnode(), registered(live()))).toEqual(rejected('ALREADY_REGISTERED'));
    });

    test('rejects OP_NEWNODE one block before the old registration\'s expiryHeight', () => {
      expect(verdict(newnode(), registered(live({ expiryHeight: H + 1 })))).toEqual(rejected('ALREADY_REGISTERED'));
    });

    test('accepts OP_NEWNODE at exactly the old registration\'s expiryHeight', () => {
      expect(verdict(newnode(), registered(live({ expiryHeight: H })))).toEqual(ACCEPTED);
    });

    test('accepts OP_NEWNODE after the old registration lapsed, even before its expiryHeight', () => {
      expect(verdict(newnode(), registered(live({ ended: true })))).toEqual(ACCEPTED);
    });

    test('another script\'s live registration does not block it', () => {
      expect(verdict(newnode(), context({ registrations: [[OTHER_STAKE, live()]] }))).toEqual(ACCEPTED);
    });
  });

  describe('OP_RENEWAL', () => {
    test('accepts a renewal of the live tip with a later timestamp', () => {
      expect(verdict(renewal(), registered(live()))).toEqual(ACCEPTED);
    });

    test('rejects a renewal of a script that was never registered as UNKNOWN_NODE', () => {
      expect(verdict(renewal(), context())).toEqual(rejected('UNKNOWN_NODE'));
    });

    test('a renewal is looked up by its stake script: another script\'s registration is UNKNOWN_NODE', () => {
      expect(verdict(renewal(), context({ registrations: [[OTHER_STAKE, live()]] }))).toEqual(rejected('UNKNOWN_NODE'));
    });

    test('rejects a renewal of an expired registration as NOT_LIVE', () => {
      expect(verdict(renewal(), registered(live({ expiryHeight: H - 5, ended: true })))).toEqual(rejected('NOT_LIVE'));
    });

    test('rejects a renewal of a lapsed registration as NOT_LIVE, even before its expiryHeight', () => {
      expect(verdict(renewal(), registered(live({ expiryHeight: H + 100, ended: true })))).toEqual(rejected('NOT_LIVE'));
    });

    test('accepts a renewal at expiryHeight - 1', () => {
      expect(verdict(renewal(), registered(live({ expiryHeight: H + 1 })))).toEqual(ACCEPTED);
    });

    test('rejects a renewal at exactly expiryHeight as NOT_LIVE', () => {
      expect(verdict(renewal(), registered(live({ expiryHeight: H })))).toEqual(rejected('NOT_LIVE'));
    });

    test('rejects a prevTxid that is not the tip as NOT_TIP', () => {
      expect(verdict(renewal({ prevTxid: OTHER_TIP }), registered(live()))).toEqual(rejected('NOT_TIP'));
    });

    test('rejects the tip txid given in RPC byte order as NOT_TIP', () => {
      const rpcOrder = Buffer.from(TIP).reverse();
      expect(verdict(renewal({ prevTxid: rpcOrder }), registered(live()))).toEqual(rejected('NOT_TIP'));
    });

    test('rejects a prevTxid naming another script\'s tip as NOT_TIP', () => {
      const ctx = context({
        registrations: [[STAKE, live()], [OTHER_STAKE, live({ tipTxid: OTHER_TIP })]],
      });
      expect(verdict(renewal({ prevTxid: OTHER_TIP }), ctx)).toEqual(rejected('NOT_TIP'));
    });

    test('rejects a timestamp below the tip\'s as TIMESTAMP_NOT_INCREASING', () => {
      expect(verdict(renewal({ timestamp: T - 7200 }), registered(live()))).toEqual(rejected('TIMESTAMP_NOT_INCREASING'));
    });

    test('rejects a timestamp equal to the tip\'s as TIMESTAMP_NOT_INCREASING', () => {
      expect(verdict(renewal({ timestamp: T - 3600 }), registered(live()))).toEqual(rejected('TIMESTAMP_NOT_INCREASING'));
    });

    test('accepts a timestamp one second after the tip\'s', () => {
      expect(verdict(renewal({ timestamp: T - 3599 }), registered(live()))).toEqual(ACCEPTED);
    });

    test('NOT_LIVE comes before NOT_TIP, and NOT_TIP before TIMESTAMP_NOT_INCREASING', () => {
      const stale = { prevTxid: OTHER_TIP, timestamp: T - 7200 };
      expect(verdict(renewal(stale), registered(live({ expiryHeight: H })))).toEqual(rejected('NOT_LIVE'));
      expect(verdict(renewal(stale), registered(live()))).toEqual(rejected('NOT_TIP'));
    });
  });
});

describe('liveness', () => {
  test('a registration is live strictly before its expiryHeight', () => {
    expect(isLive(live({ expiryHeight: 10 }), 9)).toBe(true);
    expect(isLive(live({ expiryHeight: 10 }), 10)).toBe(false);
    expect(isLive(live({ expiryHeight: 10 }), 11)).toBe(false);
  });

  test('an ended registration is never live', () => {
    expect(isLive(live({ expiryHeight: 10, ended: true }), 0)).toBe(false);
  });
});
