/**
 * The tokenizer takes text of any length (finding 10): a 200,000-character word used to overflow
 * `push(...tokens)` and cost quadratic merging. Long words are merged in pieces (a flagged
 * deviation from Hugging Face, editor/tokenizer/clip.ts) and encode stops at the 77 ids it keeps.
 */
import { expect } from "chai";
import path from "node:path";
import { CLIPTokenizer } from "../../editor/index.js";
import { TINY } from "../helpers.js";
import { requireShared } from "../support/shared-data.js";

const WORD = 200_000;
/** Letters in a pattern that never repeats a short period, so merging has real work to do. */
const mixed = Array.from({ length: WORD }, (_, i) => "etaoinshrdlucmfwypvbgkqjxz"[(i * 7919 + (i >> 5)) % 26]).join("");

for (const [name, dir] of [
  ["the real CLIP vocabulary", (ctx: Mocha.Context) => requireShared(ctx, "reference/sd15-onnx-layout/tokenizer")],
  ["the bundled test model's vocabulary", () => path.join(TINY, "tokenizer")],
] as const) {
  describe(`CLIP tokenizer on a ${WORD.toLocaleString("en")}-character word (${name})`, () => {
    let tok: CLIPTokenizer;
    before(async function () {
      tok = await CLIPTokenizer.fromFolder(dir(this));
    });

    for (const [label, word] of [["one letter repeated", "a".repeat(WORD)], ["mixed letters", mixed], ["emoji (4 UTF-8 bytes each)", "🙂".repeat(WORD / 4)]] as const) {
      it(`${label}: encode gives 77 ids, BOS first and EOS last, the same as the word's first 1,000 characters give`, () => {
        const ids = tok.encode(`make ${word} red`);
        expect(ids).to.have.length(77);
        expect(ids[0]).to.equal(tok.bos_token_id);
        expect(ids[76]).to.equal(tok.eos_token_id);
        expect(ids).to.deep.equal(tok.encode(`make ${word.slice(0, 1_000)} red`));
      });
    }

    it("untruncated: more ids than a call takes arguments, no RangeError, and they decode back to the word", () => {
      const ids = tok.encode(mixed, { truncation: false, padding: false });
      expect(ids.length).to.be.greaterThan(1_000);
      expect(tok.decode(ids)).to.equal(mixed);
      const a = tok.encode("a".repeat(WORD), { truncation: false, padding: false });
      expect(tok.decode(a)).to.equal("a".repeat(WORD));
      expect(tok.tokenize("🙂".repeat(WORD / 4)).join("").length).to.be.greaterThan(WORD / 4);
    });

    it("tokenize stops at its limit: the first tokens of the whole text", () => {
      const all = tok.tokenize(`make ${mixed}`);
      expect(tok.tokenize(`make ${mixed}`, 10)).to.deep.equal(all.slice(0, 10));
    });
  });
}
