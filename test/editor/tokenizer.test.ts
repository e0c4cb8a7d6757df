import { expect } from "chai";
import path from "node:path";
import { CLIPTokenizer } from "../../editor/index.js";
import { TINY } from "../helpers.js";
import { requireShared } from "../support/shared-data.js";

describe("CLIP tokenizer (real CLIP vocabulary from the SD1.5 export)", () => {
  let tok: CLIPTokenizer;
  before(async function () {
    tok = await CLIPTokenizer.fromFolder(requireShared(this, "reference/sd15-onnx-layout/tokenizer"));
  });

  it("reads the special tokens from the files: BOS 49406, EOS 49407, pad = EOS", () => {
    expect(tok.bos_token_id).to.equal(49406);
    expect(tok.eos_token_id).to.equal(49407);
    expect(tok.pad_token_id).to.equal(49407);
    expect(tok.vocab_size).to.equal(49408);
  });

  // golden ids from transformers' CLIPTokenizer on openai/clip-vit-large-patch14
  const golden: Array<[string, number[]]> = [
    ["a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407]],
    ["Hello, world!", [49406, 3306, 267, 1002, 256, 49407]],
    ["  A   PHOTO\tof a\ncat  ", [49406, 320, 1125, 539, 320, 2368, 49407]],
  ];
  for (const [text, ids] of golden) {
    it(`encodes ${JSON.stringify(text)} then pads to 77 with the pad token`, () => {
      const out = tok.encode(text);
      expect(out).to.have.length(77);
      expect(out.slice(0, ids.length)).to.deep.equal(ids);
      expect(new Set(out.slice(ids.length))).to.deep.equal(new Set([49407]));
    });
  }

  it("encodes non-ASCII text through UTF-8 bytes and decodes it back exactly", () => {
    for (const text of ["café crème brûlée", "make the mug 红色", "naïve 🙂 emoji", "Ünïcödé ß"]) {
      const ids = tok.encode(text, { padding: false });
      expect(ids[0]).to.equal(49406);
      expect(ids[ids.length - 1]).to.equal(49407);
      expect(ids.slice(1, -1).every((id) => id >= 0 && id < 49406)).to.equal(true);
      expect(tok.decode(ids)).to.equal(tok.normalize(text));
    }
  });

  it("truncates an over-long prompt to 77 ids, keeping BOS first and EOS last", () => {
    const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(" ");
    const ids = tok.encode(long);
    expect(ids).to.have.length(77);
    expect(ids[0]).to.equal(49406);
    expect(ids[76]).to.equal(49407);
    expect(ids.slice(1, 76)).to.not.include(49407);
  });

  it("empty text is BOS, EOS, then padding", () => {
    const ids = tok.encode("");
    expect(ids.slice(0, 2)).to.deep.equal([49406, 49407]);
    expect(ids).to.have.length(77);
  });
});

describe("CLIP tokenizer on a project-built vocabulary", () => {
  it("loads the bundled test model's tokenizer and finds its own special ids", async () => {
    const tok = await CLIPTokenizer.fromFolder(path.join(TINY, "tokenizer"));
    expect(tok.eos_token_id).to.equal(tok.vocab_size - 1);
    expect(tok.bos_token_id).to.equal(tok.vocab_size - 2);
    const ids = tok.encode("make the mug red", { padding: false });
    // every grammar word is a single merged token in the learnt vocabulary
    expect(ids).to.have.length(6);
    expect(tok.decode(ids)).to.equal("make the mug red");
  });
});
