#ifndef DSAR_STORAGE_ENCRYPTED_ZIP_H_
#define DSAR_STORAGE_ENCRYPTED_ZIP_H_

// libzip over encrypted files (storage/encrypted_file.h): a ZIP written
// straight into an EncryptedFileWriter (libzip's seeks back to patch local
// headers become WriteAt), entries read lazily from encrypted files, and an
// encrypted ZIP opened for reading. No plaintext reaches the disk and memory
// does not grow with the archive.

#include <zip.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/encrypted_file.h"

namespace dsar {

struct ZipArchiveDiscard {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
// An open archive; destruction discards it (zip_discard).
using ZipArchive = std::unique_ptr<zip_t, ZipArchiveDiscard>;

// What the subject downloads: the ZIP's plaintext.
struct ZipDigest {
  std::string sha256;  // Hex.
  int64_t size_bytes = 0;
};

// A new ZIP, encrypted at rest. Add entries to archive() with libzip, then
// Commit. Not thread-safe.
class EncryptedZipWriter {
 public:
  // Creates the temporary file beside `final_path` (see
  // EncryptedFileWriter::Create, whose errors it returns).
  static absl::StatusOr<std::unique_ptr<EncryptedZipWriter>> Create(
      const std::string& final_path, std::string data_key, std::string context);
  // Discards the archive unless committed and removes the temporary file.
  ~EncryptedZipWriter();
  EncryptedZipWriter(const EncryptedZipWriter&) = delete;
  EncryptedZipWriter& operator=(const EncryptedZipWriter&) = delete;

  // The archive to add entries to. Owned by this writer; null after Commit.
  zip_t* archive() const { return archive_; }

  // Commit stops with CANCELLED (nothing committed) soon after `*cancel`
  // becomes true: it is read before every write libzip makes. Not owned;
  // must outlive Commit. Null: never.
  void set_cancel(const std::atomic<bool>* cancel);

  // A source for zip_file_add with the plaintext of the encrypted file at
  // `path`, read chunk by chunk while Commit writes the archive. The file is
  // opened (and its last chunk authenticated) now, then again when libzip
  // reads it. The caller owns the source until zip_file_add takes it. Errors
  // as EncryptedFileReader::Open's; a failure during Commit is Commit's.
  absl::StatusOr<zip_source_t*> NewFileSource(const std::string& path,
                                              std::string data_key,
                                              std::string context);

  // zip_close: libzip compresses the entries and writes the archive into
  // the temporary file. Then reads it back (authenticating each chunk) to
  // hash its plaintext, and commits it to the final path (fsync, rename,
  // fsync of the directory). Errors name the file and the cause: an entry
  // source's (e.g. DATA_LOSS for an export that no longer authenticates),
  // the encrypted file's, or libzip's (INTERNAL). The final path is
  // untouched unless this returns OK. Call once.
  absl::StatusOr<ZipDigest> Commit();

 private:
  struct WriteState;
  EncryptedZipWriter(std::string final_path,
                     std::unique_ptr<EncryptedFileWriter> file);
  // libzip's callback for the archive's own (writable) source.
  static zip_int64_t WriteCallback(void* state, void* data, zip_uint64_t len,
                                   zip_source_cmd_t command);

  std::string final_path_;
  std::unique_ptr<EncryptedFileWriter> file_;
  std::unique_ptr<WriteState> state_;
  zip_t* archive_ = nullptr;
};

// Opens the encrypted ZIP at `path` for reading (ZIP_RDONLY |
// ZIP_CHECKCONS); libzip reads it through an EncryptedFileReader, so
// entries are decrypted as zip_fread asks for them and a chunk that does not
// authenticate makes the read fail. NOT_FOUND / DATA_LOSS as
// EncryptedFileReader::Open; DATA_LOSS naming the path when the plaintext is
// not a consistent ZIP.
absl::StatusOr<ZipArchive> OpenEncryptedZip(const std::string& path,
                                            std::string data_key,
                                            std::string context);

}  // namespace dsar

#endif  // DSAR_STORAGE_ENCRYPTED_ZIP_H_
