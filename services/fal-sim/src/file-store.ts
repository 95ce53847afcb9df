import { createHash, randomUUID } from 'node:crypto';

/** fal storage, in memory: uploads and the files runs produce, served under `/files/<token>/<name>`. */
export interface StoredFile {
  bytes: Buffer;
  contentType: string;
  name: string;
}

export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private readonly pendingUploads = new Map<string, { contentType: string; name: string }>();
  /** Multipart uploads in progress: their parts by number, each with the etag its PUT answered. */
  private readonly multipart = new Map<
    string,
    { contentType: string; name: string; parts: Map<number, { bytes: Buffer; etag: string }> }
  >();

  constructor(private readonly baseUrl: () => string) {}

  /** Reserves an upload: the client PUTs the bytes to `uploadUrl`, then uses `fileUrl`. */
  initiate(contentType: string, fileName: string): { uploadUrl: string; fileUrl: string } {
    const token = randomUUID();
    const name = safeName(fileName);
    this.pendingUploads.set(token, { contentType, name });
    return { uploadUrl: `${this.baseUrl()}/storage/upload/${token}`, fileUrl: this.urlOf(token, name) };
  }

  completeUpload(token: string, bytes: Buffer, contentType?: string): boolean {
    const pending = this.pendingUploads.get(token);
    if (!pending) return false;
    this.pendingUploads.delete(token);
    this.files.set(token, { bytes, contentType: contentType || pending.contentType, name: pending.name });
    return true;
  }

  /** fal's multipart upload (files over 90 MB): numbered part PUTs under `uploadUrl`, then `uploadUrl/complete`. */
  initiateMultipart(contentType: string, fileName: string): { uploadUrl: string; fileUrl: string } {
    const token = randomUUID();
    const name = safeName(fileName);
    this.multipart.set(token, { contentType, name, parts: new Map() });
    return {
      uploadUrl: `${this.baseUrl()}/storage/upload/multipart/${token}`,
      fileUrl: this.urlOf(token, name),
    };
  }

  putPart(
    token: string,
    partNumber: number,
    bytes: Buffer,
  ): { partNumber: number; etag: string } | undefined {
    const upload = this.multipart.get(token);
    if (!upload) return undefined;
    const etag = `"${createHash('md5').update(bytes).digest('hex')}"`;
    upload.parts.set(partNumber, { bytes, etag });
    return { partNumber, etag };
  }

  /** Joins the listed parts in order; answers what is wrong when the list does not match the parts received. */
  completeMultipart(token: string, parts: Array<{ partNumber: number; etag: string }>): string | undefined {
    const upload = this.multipart.get(token);
    if (!upload) return 'unknown or already completed multipart upload';
    const chunks: Buffer[] = [];
    for (const { partNumber, etag } of [...parts].sort((a, b) => a.partNumber - b.partNumber)) {
      const part = upload.parts.get(partNumber);
      if (!part) return `part ${partNumber} was never uploaded`;
      if (part.etag !== etag) return `part ${partNumber}: etag ${etag} does not match ${part.etag}`;
      chunks.push(part.bytes);
    }
    if (chunks.length === 0) return 'no parts listed';
    this.multipart.delete(token);
    this.files.set(token, {
      bytes: Buffer.concat(chunks),
      contentType: upload.contentType,
      name: upload.name,
    });
    return undefined;
  }

  /** Stores a file a run produced and returns its public URL. */
  put(name: string, bytes: Buffer, contentType: string): string {
    const token = randomUUID();
    this.files.set(token, { bytes, contentType, name });
    return this.urlOf(token, name);
  }

  get(token: string): StoredFile | undefined {
    return this.files.get(token);
  }

  /** The file behind one of our own URLs, or undefined when the URL is not fal-sim's or the file is gone. */
  fromUrl(url: string): StoredFile | undefined {
    const prefix = `${this.baseUrl()}/files/`;
    if (!url.startsWith(prefix)) return undefined;
    return this.files.get(url.slice(prefix.length).split('/')[0] ?? '');
  }

  isOwnUrl(url: string): boolean {
    return url.startsWith(`${this.baseUrl()}/files/`);
  }

  clear(): void {
    this.files.clear();
    this.pendingUploads.clear();
    this.multipart.clear();
  }

  private urlOf(token: string, name: string): string {
    return `${this.baseUrl()}/files/${token}/${encodeURIComponent(name)}`;
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120) || 'file';
}
