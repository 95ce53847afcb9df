import { randomUUID } from 'node:crypto';

/** fal storage, in memory: uploads and the files runs produce, served under `/files/<token>/<name>`. */
export interface StoredFile {
  bytes: Buffer;
  contentType: string;
  name: string;
}

export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private readonly pendingUploads = new Map<string, { contentType: string; name: string }>();

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
  }

  private urlOf(token: string, name: string): string {
    return `${this.baseUrl()}/files/${token}/${encodeURIComponent(name)}`;
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120) || 'file';
}
