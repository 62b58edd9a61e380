#ifndef DSAR_STORAGE_ENCRYPTED_FILE_H_
#define DSAR_STORAGE_ENCRYPTED_FILE_H_

// Files of personal data encrypted at rest: AES-256-GCM (OpenSSL EVP) in
// independently authenticated chunks, so that a file can be read at any
// offset and rewritten in place (libzip seeks back to patch local headers)
// with memory that does not grow with the file.
//
// Layout (integers big-endian):
//   header   "DSARENC1" (8 bytes) | chunk size C: u32 | file id: 16 random
//            bytes                                            (28 bytes)
//   chunk i  nonce (12 random bytes, fresh each time the chunk is written) |
//            ciphertext | tag (16 bytes)
// Every chunk but the last holds exactly C plaintext bytes; the last holds
// fewer (0 <= n < C), so an empty file, or one of exactly k*C bytes, ends
// with an empty chunk. Chunk i sits at 28 + i * (C + 28); the plaintext size
// follows from the file size. C is kEncryptedFileChunkBytes when written.
//
// Associated data of chunk i:
//   context | header | i: u64 | final: 1 byte (1 for the last chunk, else 0)
// `context` is the caller's binding of the file to its use, e.g.
// ExportFileContext(request id); the header is fixed-size, so the context is
// unambiguous. A chunk therefore authenticates only under the key, context
// and file it was written for, at its index, with its finality: reordered,
// swapped between files, altered, or cut at a chunk boundary (the new last
// chunk lacks the final flag), it fails.
//
// Keys are not this module's business: the engine owns a data key per
// request and passes its 32 bytes in.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dsar {

inline constexpr size_t kEncryptedFileKeyBytes = 32;
inline constexpr size_t kEncryptedFileChunkBytes = 64 * 1024;

// The contexts the engine and the download path agree on.
std::string ExportFileContext(std::string_view request_id);  // "export:<id>"
std::string BundleFileContext(std::string_view request_id);  // "bundle:<id>"

namespace internal {

// Seals and opens the chunks of one file: key, EVP contexts and associated
// data (storage/encrypted_file.cc).
class ChunkCipher;

}  // namespace internal

// Writes an encrypted file under a temporary name beside its final path and
// renames it into place on Commit. Not thread-safe. Holds one chunk of
// plaintext in memory (plus a second one while rewriting an earlier chunk).
// After a failed call the writer is broken: every later call returns the
// same error, and destruction removes the temporary file.
class EncryptedFileWriter {
 public:
  // Creates missing parent directories (0700) and the temporary file (0600
  // whatever the umask) and writes the header. INVALID_ARGUMENT unless
  // `data_key` has kEncryptedFileKeyBytes bytes; INTERNAL naming the path
  // when a directory or the file cannot be created.
  static absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> Create(
      const std::string& final_path, std::string data_key, std::string context);
  // Removes the temporary file unless Commit succeeded.
  ~EncryptedFileWriter();
  EncryptedFileWriter(const EncryptedFileWriter&) = delete;
  EncryptedFileWriter& operator=(const EncryptedFileWriter&) = delete;

  // Appends at size(). Whole chunks are encrypted straight from `bytes`.
  absl::Status Append(std::string_view bytes);
  // Writes `bytes` at `offset` <= size(), extending the file when it runs
  // past the end. A chunk already written is read back, authenticated,
  // patched and written again under a fresh nonce. INVALID_ARGUMENT for an
  // offset outside [0, size()]; DATA_LOSS when the chunk read back fails to
  // authenticate.
  absl::Status WriteAt(int64_t offset, std::string_view bytes);
  // Reads up to `n` plaintext bytes at `offset` into `out` (short only at
  // the end of the file) from what has been written so far. INVALID_ARGUMENT
  // for a negative offset; DATA_LOSS when a chunk fails to authenticate.
  absl::StatusOr<size_t> ReadAt(int64_t offset, char* out, size_t n);
  // Plaintext bytes written so far.
  int64_t size() const { return size_; }

  // Seals the last chunk, fsyncs the file, renames it to the final path and
  // fsyncs the directory: when this returns OK the file survives a crash.
  // FAILED_PRECONDITION when already committed.
  absl::Status Commit();
  // As Commit, without either fsync: for temporaries that are useless after
  // a crash anyway (e.g. written under a key that lives only in memory).
  absl::Status CommitUnsynced();

 private:
  EncryptedFileWriter(std::string final_path, std::string temp_path, int fd,
                      std::unique_ptr<internal::ChunkCipher> cipher);
  absl::Status CheckWritable() const;
  absl::Status Finish(bool sync);
  absl::Status WriteToTail(int64_t offset, std::string_view bytes);
  absl::Status RewriteSealedChunk(int64_t index, size_t within,
                                  std::string_view patch);
  absl::Status ReadSealedChunk(int64_t index, unsigned char* chunk);
  // Encrypts `plaintext` (which may be chunk + kNonce, in place) into
  // `chunk` as chunk `index` and writes it.
  absl::Status SealAndWrite(int64_t index, const unsigned char* plaintext,
                            size_t length, bool final, unsigned char* chunk);
  unsigned char* Scratch();

  std::string final_path_;
  std::string temp_path_;
  int fd_;
  std::unique_ptr<internal::ChunkCipher> cipher_;
  int64_t size_ = 0;
  // Chunks [0, tail_index_) are sealed on disk, all full; chunk tail_index_
  // is in tail_ (nonce | tail_size_ plaintext bytes | room for the tag).
  int64_t tail_index_ = 0;
  size_t tail_size_ = 0;
  std::unique_ptr<unsigned char[]> tail_;
  std::unique_ptr<unsigned char[]> scratch_;  // Allocated on first rewrite.
  absl::Status error_;                        // Sticky.
  bool committed_ = false;
};

// Reads an encrypted file. Not thread-safe. Memory: one chunk.
class EncryptedFileReader {
 public:
  // Checks the header and authenticates the last chunk (which covers the
  // header and the chunk count). NOT_FOUND naming the path when it does not
  // exist; DATA_LOSS naming the path when it is not such a file or does not
  // authenticate (another key or context, truncated, altered);
  // INVALID_ARGUMENT for a key of the wrong size.
  static absl::StatusOr<std::unique_ptr<EncryptedFileReader>> Open(
      const std::string& path, std::string data_key, std::string context);
  ~EncryptedFileReader();
  EncryptedFileReader(const EncryptedFileReader&) = delete;
  EncryptedFileReader& operator=(const EncryptedFileReader&) = delete;

  // Plaintext size.
  int64_t size() const { return size_; }
  // Reads up to `n` bytes at `offset` into `out`; fewer only at the end of
  // the file (0 at or past it). The chunk last read is cached, so sequential
  // reads decrypt each chunk once; a read covering whole chunks decrypts
  // them straight into `out`. INVALID_ARGUMENT for a negative offset;
  // DATA_LOSS naming the path and chunk when a chunk fails to authenticate
  // (then `out` holds no unauthenticated bytes).
  absl::StatusOr<size_t> ReadAt(int64_t offset, char* out, size_t n);

 private:
  EncryptedFileReader(std::string path, int fd,
                      std::unique_ptr<internal::ChunkCipher> cipher,
                      int64_t size);
  // Plaintext bytes in chunk `index`.
  size_t ChunkSize(int64_t index) const;
  // Reads chunk `index` into buffer_ and decrypts it into `out` (which may
  // be buffer_ + the nonce size, in place).
  absl::Status DecryptChunk(int64_t index, unsigned char* out);

  std::string path_;
  int fd_;
  std::unique_ptr<internal::ChunkCipher> cipher_;
  int64_t size_;
  int64_t chunk_count_;
  // One sealed chunk; after an in-place decryption, the plaintext of chunk
  // cached_index_ (-1: none) follows the nonce.
  std::unique_ptr<unsigned char[]> buffer_;
  int64_t cached_index_ = -1;
};

// SHA-256 (hex) of the plaintext of the encrypted file at `path`, read in
// chunks. Errors as EncryptedFileReader's.
absl::StatusOr<std::string> EncryptedFileSha256Hex(const std::string& path,
                                                   std::string data_key,
                                                   std::string context);

}  // namespace dsar

#endif  // DSAR_STORAGE_ENCRYPTED_FILE_H_
