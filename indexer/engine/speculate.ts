import { BlockReader } from '../chain/blkfiles.js';
import type { BestChain, SeenBlock } from '../chain/chain.js';
import { coinsWithin, MemoryUtxo } from './coinview.js';
import { connectBlock } from './connect.js';
import { CoinFile } from '../store/coinfile.js';
import type { ChainState } from '../store/state.js';

/** Blocks kept waiting for their parent before speculation gives up. */
const MAX_WAITING = 4096;

/**
 * Rows a temporary index may hold before speculation for it to spill: their
 * copy restores the database should the bet fail. A new temporary index
 * holds a handful (its meta rows).
 */
const MAX_SNAPSHOT_ROWS = 256;

/**
 * Connects blocks while the chain pass is still reading, betting that the
 * blocks it meets, parent before child, form the chain it will choose. That
 * holds for a directory without forks (most regtest and test chains, and the
 * benchmark), and lets the main thread connect while the worker threads hash.
 * The bet is checked once the chain is chosen (`matches`); whenever it cannot
 * hold (a second child of a connected block, too many blocks without a
 * parent, a block that does not connect) the speculator stops, and the caller
 * throws its state away (`discard`) and recounts the chosen chain normally.
 *
 * At the memory budget it spills into the temporary database like any
 * recount and goes on; the chain pass waits for each block's connect (its
 * `onBlockSeen` returns a promise), so reading never runs far ahead of
 * connecting. If the bet then fails, `discard` puts the database back as it
 * was before the first block: every row it held was copied at the start.
 */
interface Pending {
  block: SeenBlock;
  bytes: Buffer;
}

export class Speculator {
  /**
   * Sized for half the coins the budget allows (a table as large as it
   * allows leaves too little room for the rows the state gathers until the
   * bet is checked): growing a large table from small rehashes it again and again.
   */
  readonly mem: MemoryUtxo;
  /** Height of the last block connected, -1 before genesis. */
  height = -1;
  txs = 0;
  /** Why speculation stopped, or null while it goes on. */
  stopped: string | null = null;
  /** The state may hold part of a block (a connect failed) or is over the limit: it must be thrown away. */
  dirty = false;
  private tipKey: string | null = null;
  private readonly keys: string[] = [];
  private readonly connected = new Set<string>();
  private readonly waiting = new Map<string, SeenBlock>();
  private readonly reader: BlockReader;
  /** The database's rows before speculation began, or null if too many to copy (it then stops at the budget instead of spilling). */
  private before: Array<[Buffer, Buffer]> | null = null;
  /** A spill has written to the database. */
  private wrote = false;
  /** After the first spill: the block taken last, connected when the next one comes. */
  private pending: Pending | null = null;

  constructor(
    private readonly state: ChainState,
    private readonly genesisKey: string,
    xorKey: Buffer | null,
    private readonly limit: number,
    private readonly spillDir?: string,
  ) {
    this.reader = new BlockReader(xorKey);
    this.mem = new MemoryUtxo(false, [], coinsWithin(limit) / 2);
  }

  /** Copies the rows of the (new, temporary) database, so that a spill made on a lost bet can be undone. */
  async start(): Promise<void> {
    const rows: Array<[Buffer, Buffer]> = [];
    for await (const row of this.state.db.iterator({ limit: MAX_SNAPSHOT_ROWS + 1 })) rows.push(row);
    this.before = rows.length <= MAX_SNAPSHOT_ROWS ? rows : null;
    // Its spills put their coins where the recount's own would (recount.ts
    // `recountInMemory`, which takes the file over with the state).
    if (this.before !== null && this.state.committedTip === null) this.mem.coinFile = CoinFile.create(this.spillDir);
  }

  /**
   * The chain pass met `block`: connect it if it extends the tip, else park
   * it until its parent comes. True when `block` itself was connected: the
   * chain pass need not keep its txids (if the bet fails, they are hashed again).
   */
  async seen(block: SeenBlock): Promise<boolean> {
    if (this.stopped !== null) return false;
    const extends_ = this.tipKey === null ? block.key === this.genesisKey : block.prevKey === this.tipKey;
    if (!extends_) {
      if (this.connected.has(block.prevKey) || this.waiting.has(block.prevKey)) this.stop('a fork');
      else if (this.waiting.size >= MAX_WAITING) this.stop('too many blocks out of order');
      else this.waiting.set(block.prevKey, block);
      return false;
    }
    let next: SeenBlock | undefined = block;
    // The block in hand is connected from the chain pass's buffer; those that waited for it are read again.
    let bytes: Buffer | null = block.bytes;
    while (next !== undefined && this.stopped === null) {
      await this.connect(next, bytes ?? this.reader.read(next.loc));
      bytes = null;
      next = this.waiting.get(next.key);
      if (next !== undefined) this.waiting.delete(next.prevKey);
    }
    return this.tipKey === block.key || this.connected.has(block.key);
  }

  /**
   * Takes the next block of the bet. Before the first spill it is connected
   * at once. After it, each block is connected only once the next one comes,
   * so that the next one's database reads run while it connects (coinview.ts
   * `readAhead`), as in the recount's own loop; `finish` connects the last.
   */
  private async connect(block: SeenBlock, bytes: Buffer): Promise<void> {
    this.tipKey = block.key;
    if (!this.mem.spilled) return this.apply(block, bytes, null);
    const prev = this.pending;
    // A copy: the chain pass's buffer is reused once it reads on. (Not
    // Buffer.from, which zero-fills the new buffer before it copies: a
    // second pass over every block's bytes.)
    const copy = Buffer.allocUnsafeSlow(bytes.length);
    bytes.copy(copy);
    this.pending = { block, bytes: copy };
    if (prev !== null) await this.apply(prev.block, prev.bytes, this.pending);
  }

  private async apply(block: SeenBlock, bytes: Buffer, ahead: Pending | null): Promise<void> {
    // Once spilled, the coins the block spends may be in the database (a read fault throws, as in any recount).
    await this.mem.prefetch(this.state.db, bytes, block.txids);
    if (ahead !== null) this.mem.readAhead(this.state.db, ahead.bytes, ahead.block.txids);
    try {
      const summary = connectBlock(this.state, this.mem, bytes, block.txids, this.height + 1);
      this.txs += summary.txCount;
    } catch (err) {
      // The normal recount will meet the same block only if it is on the chosen chain, and report it then.
      this.dirty = true;
      this.pending = null;
      return this.stop(`block ${this.height + 1} did not connect (${(err as Error).message})`);
    }
    this.height++;
    this.keys.push(block.key);
    this.connected.add(block.key);
    if (this.mem.footprint(this.state) <= this.limit) return;
    if (this.before === null) return this.stop('the memory limit');
    this.wrote = true;
    await this.mem.spill(this.state);
  }

  /** The chain pass has ended: connects the block still waiting for its successor. */
  async finish(): Promise<void> {
    const last = this.pending;
    this.pending = null;
    if (last !== null && !this.dirty) await this.apply(last.block, last.bytes, null);
  }

  private stop(why: string): void {
    this.stopped = why;
    this.waiting.clear();
    this.reader.close();
  }

  /** Whether the state is exactly that of the chosen chain up to `height`: every block connected is the chain's block at its height. */
  matches(chain: BestChain, target: number): boolean {
    if (this.dirty || this.height < 0 || this.height > target || this.height >= chain.blocks.length) return false;
    for (let h = 0; h <= this.height; h++) {
      if (chain.blocks[h]!.hash.toString('latin1') !== this.keys[h]) return false;
    }
    return true;
  }

  /**
   * Throws the speculative state away: the database gets back the rows it
   * held before the first block (the caller loads a fresh state from it).
   */
  async discard(): Promise<void> {
    this.close();
    this.dropFile();
    this.pending = null;
    if (!this.wrote) return;
    await this.state.db.clear();
    const batch = this.state.db.batch();
    for (const [k, v] of this.before!) batch.put(k, v);
    await batch.write();
    this.wrote = false;
  }

  close(): void {
    this.reader.close();
  }

  /** Closes the coin file, which vanishes with its spilled coins: on a lost bet, or when the recount ends before taking the state over. */
  dropFile(): void {
    this.mem.coinFile?.close();
    this.mem.coinFile = null;
  }
}
