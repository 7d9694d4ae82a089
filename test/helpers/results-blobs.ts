/**
 * The results service's blob container in Azurite (azurite.ts): SAS URLs for the
 * clients to upload and download through, and what the service itself checks
 * or shows of the blobs (size, sha256, listing, bytes).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY } from './azurite.js';

export interface BlobInfo {
  name: string;
  size: number;
  contentType?: string;
}

export interface ResultsBlobs {
  /** The blob endpoint, without a trailing slash. */
  endpoint: string;
  /** The container's name. */
  name: string;
  /** A SAS URL for one blob with `permissions` ('r', 'cw'...) and response headers. */
  sasUrl(
    blobName: string,
    permissions: string,
    headers?: { contentDisposition?: string; contentType?: string },
  ): string;
  /** The blob's size, or undefined when there is no such blob. */
  size(blobName: string): Promise<number | undefined>;
  /** The hex sha256 of the blob's bytes. */
  sha256(blobName: string): Promise<string>;
  /** Delete the blob if it exists. */
  remove(blobName: string): Promise<void>;
  list(): Promise<BlobInfo[]>;
  read(blobName: string): Promise<Buffer>;
  /** Replace a blob's bytes (tests that tamper with a cache entry). */
  write(blobName: string, data: Buffer): Promise<void>;
}

export interface OpenBlobsOptions {
  /** Container name (default results-<random>); created if missing. */
  container?: string;
  /** Lifetime of the SAS URLs handed out (default 60 min). */
  sasLifetimeMinutes?: number;
}

/** The container (created if missing) at an Azurite blob endpoint (http://127.0.0.1:PORT/devstoreaccount1). */
export async function openResultsBlobs(blobEndpoint: string, options: OpenBlobsOptions = {}): Promise<ResultsBlobs> {
  const endpoint = blobEndpoint.replace(/\/+$/, '');
  const account = new URL(endpoint).pathname.split('/').filter(Boolean)[0] ?? AZURITE_ACCOUNT;
  const credential = new StorageSharedKeyCredential(account, AZURITE_ACCOUNT_KEY);
  const blobService = new BlobServiceClient(endpoint, credential);
  const containerName = options.container ?? `results-${randomBytes(4).toString('hex')}`;
  const container: ContainerClient = blobService.getContainerClient(containerName);
  await container.createIfNotExists();
  const sasLifetimeMs = (options.sasLifetimeMinutes ?? 60) * 60_000;

  return {
    endpoint,
    name: containerName,

    sasUrl(blobName, permissions, headers = {}) {
      const now = Date.now();
      const sas = generateBlobSASQueryParameters(
        {
          containerName,
          blobName,
          permissions: BlobSASPermissions.parse(permissions),
          startsOn: new Date(now - 5 * 60_000), // clock skew allowance, as real services do
          expiresOn: new Date(now + sasLifetimeMs),
          ...headers,
        },
        credential,
      ).toString();
      return `${container.getBlockBlobClient(blobName).url}?${sas}`;
    },

    async size(blobName) {
      try {
        const props = await container.getBlockBlobClient(blobName).getProperties();
        return props.contentLength ?? 0;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined;
        throw err;
      }
    },

    async sha256(blobName) {
      const res = await container.getBlockBlobClient(blobName).download();
      const hash = createHash('sha256');
      for await (const chunk of res.readableStreamBody as AsyncIterable<Buffer>) hash.update(chunk);
      return hash.digest('hex');
    },

    async remove(blobName) {
      await container.getBlockBlobClient(blobName).deleteIfExists();
    },

    async list() {
      const out: BlobInfo[] = [];
      for await (const b of container.listBlobsFlat()) {
        out.push({
          name: b.name,
          size: b.properties.contentLength ?? 0,
          ...(b.properties.contentType ? { contentType: b.properties.contentType } : {}),
        });
      }
      return out;
    },

    async read(blobName) {
      return container.getBlockBlobClient(blobName).downloadToBuffer();
    },

    async write(blobName, data) {
      await container.getBlockBlobClient(blobName).uploadData(data);
    },
  };
}
