/**
 * XMP in the result: the IPTC digital source type (what Google Images, Meta and stock agencies
 * read), xmp:CreatorTool, and the edit's parameters. The packet is put into the encoded file's
 * container as it is, without decoding the image again (a JPEG or WebP re-encoded would lose
 * quality): a PNG iTXt chunk, a JPEG APP1 segment, a WebP "XMP " chunk (with the VP8X header the
 * extended format needs). The C2PA manifest is added after, so its data hash covers the XMP too.
 */
import { crc32 } from "node:zlib";
import type { OutputFormat } from "../../editor/index.js";

export const XMP_NS = "urn:reward-edit:xmp:1.0/";
const XMP_JPEG_ID = "http://ns.adobe.com/xap/1.0/\0";
const PNG_XMP_KEYWORD = "XML:com.adobe.xmp";

const escapeXml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/[\r\n\t]/g, (c) => `&#${c.charCodeAt(0)};`);
const unescapeXml = (s: string) =>
  s.replace(/&#(\d+);/g, (_, d) => String.fromCharCode(Number(d))).replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

export interface XmpFields {
  digitalSourceType: string;
  creatorTool: string;
  /** JSON of the edit's parameters (absent: not recorded). */
  parameters?: string;
}

export function xmpPacket(f: XmpFields): string {
  const attrs = [
    `xmp:CreatorTool="${escapeXml(f.creatorTool)}"`,
    `Iptc4xmpExt:DigitalSourceType="${escapeXml(f.digitalSourceType)}"`,
    ...(f.parameters !== undefined ? [`rewardedit:Parameters="${escapeXml(f.parameters)}"`] : []),
  ];
  return (
    `<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n` +
    `<x:xmpmeta xmlns:x="adobe:ns:meta/">\n <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n` +
    `  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:rewardedit="${XMP_NS}"\n   ` +
    attrs.join("\n   ") +
    `/>\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="r"?>`
  );
}

/** Our fields back from a packet (what `inspect` and the score report read). */
export function parseXmp(packet: string): Partial<XmpFields> {
  const attr = (name: string) => {
    const m = new RegExp(`${name}="([^"]*)"`).exec(packet) ?? new RegExp(`<${name}>([^<]*)</${name}>`).exec(packet);
    return m ? unescapeXml(m[1]) : undefined;
  };
  return { digitalSourceType: attr("Iptc4xmpExt:DigitalSourceType"), creatorTool: attr("xmp:CreatorTool"), parameters: attr("rewardedit:Parameters") };
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0);
  return Buffer.concat([head, data, crc]);
}

function insertPng(png: Buffer, packet: string): Buffer {
  // after IHDR (8-byte signature, then IHDR's 4+4+13+4 bytes)
  const at = 8 + 25;
  if (png.toString("latin1", 12, 16) !== "IHDR") throw new Error("not a PNG with IHDR first");
  const data = Buffer.concat([Buffer.from(`${PNG_XMP_KEYWORD}\0\0\0\0\0`, "latin1"), Buffer.from(packet, "utf8")]);
  return Buffer.concat([png.subarray(0, at), pngChunk("iTXt", data), png.subarray(at)]);
}

function insertJpeg(jpeg: Buffer, packet: string): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error("not a JPEG");
  const body = Buffer.concat([Buffer.from(XMP_JPEG_ID, "latin1"), Buffer.from(packet, "utf8")]);
  if (body.length + 2 > 0xffff) throw new Error("XMP packet too large for one JPEG segment");
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(body.length + 2, 2);
  // after SOI and a JFIF APP0, where readers look for it
  let at = 2;
  if (jpeg[2] === 0xff && jpeg[3] === 0xe0) at = 4 + jpeg.readUInt16BE(4);
  return Buffer.concat([jpeg.subarray(0, at), seg, body, jpeg.subarray(at)]);
}

/** Canvas size of a simple-format WebP, for the VP8X header the extended format needs. */
function webpCanvas(chunk: string, data: Buffer): { width: number; height: number } {
  if (chunk === "VP8 ") return { width: data.readUInt16LE(6) & 0x3fff, height: data.readUInt16LE(8) & 0x3fff };
  if (chunk === "VP8L") {
    const bits = data.readUInt32LE(1);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  throw new Error(`unexpected WebP chunk ${chunk}`);
}

function webpChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(type, 0, "latin1");
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function insertWebp(webp: Buffer, packet: string): Buffer {
  if (webp.toString("latin1", 0, 4) !== "RIFF" || webp.toString("latin1", 8, 12) !== "WEBP") throw new Error("not a WebP");
  const first = webp.toString("latin1", 12, 16);
  let chunks = webp.subarray(12);
  if (first === "VP8X") {
    const flags = Buffer.from(chunks.subarray(0, 18));
    flags[8] |= 0x04; // XMP present
    chunks = Buffer.concat([flags, chunks.subarray(18)]);
  } else {
    const { width, height } = webpCanvas(first, chunks.subarray(8));
    const vp8x = Buffer.alloc(10);
    vp8x[0] = 0x04;
    vp8x.writeUIntLE(width - 1, 4, 3);
    vp8x.writeUIntLE(height - 1, 7, 3);
    if (first === "VP8L" && (chunks[8 + 4] & 0x10)) vp8x[0] |= 0x10; // alpha_is_used
    chunks = Buffer.concat([webpChunk("VP8X", vp8x), chunks]);
  }
  // XMP goes after the image data (WebP container specification)
  const body = Buffer.concat([Buffer.from("WEBP", "latin1"), chunks, webpChunk("XMP ", Buffer.from(packet, "utf8"))]);
  const riff = Buffer.alloc(8);
  riff.write("RIFF", 0, "latin1");
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

export function insertXmp(bytes: Buffer, format: OutputFormat, packet: string): Buffer {
  if (format === "png") return insertPng(bytes, packet);
  if (format === "jpeg") return insertJpeg(bytes, packet);
  return insertWebp(bytes, packet);
}

/** The first XMP packet in a file of any of the three formats (a plain scan: the packet's markers are fixed). */
export function findXmp(bytes: Buffer): string | null {
  const start = bytes.indexOf("<x:xmpmeta");
  if (start < 0) return null;
  const end = bytes.indexOf("</x:xmpmeta>", start);
  return end < 0 ? null : bytes.toString("utf8", start, end + "</x:xmpmeta>".length);
}
