#include "storage/encrypted_zip.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dsar {
namespace {

// Reads after zip_source_args for libzip's commands; see zip_source_function
// (3). The callbacks never throw and report failures through `error`, with
// the full absl::Status kept where the caller can return it.
struct FileSourceState {
  ~FileSourceState() {
    OPENSSL_cleanse(key.data(), key.size());
    zip_error_fini(&error);
  }

  // Reports the first failure to `sink` and libzip's error to libzip.
  zip_int64_t Fail(const absl::Status& status, int zip_code) {
    if (sink != nullptr && sink->ok()) *sink = status;
    zip_error_set(&error, zip_code, EIO);
    return -1;
  }

  std::string path;
  std::string key;
  std::string context;
  int64_t size = 0;
  time_t mtime = 0;
  // An archive's own source is seekable and keeps its reader open; an
  // entry's opens it for the one pass libzip makes over it.
  bool seekable = false;
  std::unique_ptr<EncryptedFileReader> reader;
  int64_t position = 0;
  zip_error_t error;
  absl::Status* sink = nullptr;  // May be null.
};

zip_int64_t FileSourceCallback(void* userdata, void* data, zip_uint64_t len,
                               zip_source_cmd_t command) {
  auto* state = static_cast<FileSourceState*>(userdata);
  switch (command) {
    case ZIP_SOURCE_SUPPORTS:
      return state->seekable
                 ? ZIP_SOURCE_SUPPORTS_SEEKABLE
                 : ZIP_SOURCE_SUPPORTS_READABLE |
                       ZIP_SOURCE_MAKE_COMMAND_BITMASK(ZIP_SOURCE_SUPPORTS);
    case ZIP_SOURCE_OPEN:
      if (state->reader == nullptr) {
        absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
            EncryptedFileReader::Open(state->path, state->key, state->context);
        if (!reader.ok()) return state->Fail(reader.status(), ZIP_ER_OPEN);
        if ((*reader)->size() != state->size) {
          return state->Fail(
              absl::DataLossError(absl::StrCat(
                  "encrypted file ", state->path, ": size changed from ",
                  state->size, " to ", (*reader)->size())),
              ZIP_ER_CHANGED);
        }
        state->reader = *std::move(reader);
      }
      state->position = 0;
      return 0;
    case ZIP_SOURCE_READ: {
      if (state->reader == nullptr) {
        zip_error_set(&state->error, ZIP_ER_INTERNAL, 0);
        return -1;
      }
      absl::StatusOr<size_t> n = state->reader->ReadAt(
          state->position, static_cast<char*>(data), static_cast<size_t>(len));
      if (!n.ok()) return state->Fail(n.status(), ZIP_ER_READ);
      state->position += static_cast<int64_t>(*n);
      return static_cast<zip_int64_t>(*n);
    }
    case ZIP_SOURCE_CLOSE:
      if (!state->seekable) state->reader.reset();
      return 0;
    case ZIP_SOURCE_STAT: {
      zip_stat_t* st =
          ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len, &state->error);
      if (st == nullptr) return -1;
      st->size = static_cast<zip_uint64_t>(state->size);
      st->mtime = state->mtime;
      st->comp_method = ZIP_CM_STORE;
      st->encryption_method = ZIP_EM_NONE;
      st->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME | ZIP_STAT_COMP_METHOD |
                   ZIP_STAT_ENCRYPTION_METHOD;
      return sizeof(*st);
    }
    case ZIP_SOURCE_SEEK: {
      zip_int64_t to = zip_source_seek_compute_offset(
          static_cast<zip_uint64_t>(state->position),
          static_cast<zip_uint64_t>(state->size), data, len, &state->error);
      if (to < 0) return -1;
      state->position = to;
      return 0;
    }
    case ZIP_SOURCE_TELL:
      return state->position;
    case ZIP_SOURCE_ERROR:
      return zip_error_to_data(&state->error, data, len);
    case ZIP_SOURCE_FREE:
      delete state;
      return 0;
    default:
      zip_error_set(&state->error, ZIP_ER_OPNOTSUPP, 0);
      return -1;
  }
}

// Opens `path` to learn its size (authenticating its last chunk) and fills
// a state for FileSourceCallback.
absl::StatusOr<std::unique_ptr<FileSourceState>> NewFileSourceState(
    const std::string& path, std::string data_key, std::string context,
    bool keep_open) {
  auto state = std::make_unique<FileSourceState>();
  zip_error_init(&state->error);
  ASSIGN_OR_RETURN(state->reader,
                   EncryptedFileReader::Open(path, data_key, context));
  state->path = path;
  state->key = std::move(data_key);
  state->context = std::move(context);
  state->size = state->reader->size();
  state->seekable = keep_open;
  struct stat st;
  state->mtime = ::stat(path.c_str(), &st) == 0 ? st.st_mtime : ::time(nullptr);
  if (!keep_open) state->reader.reset();
  return state;
}

}  // namespace

// The archive's own source: writes go to the EncryptedFileWriter at the
// position libzip seeks to.
struct EncryptedZipWriter::WriteState {
  WriteState() { zip_error_init(&error); }
  ~WriteState() { zip_error_fini(&error); }

  zip_int64_t Fail(const absl::Status& failure, int zip_code) {
    if (status.ok()) status = failure;
    zip_error_set(&error, zip_code, EIO);
    return -1;
  }

  EncryptedFileWriter* file = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  int64_t position = 0;
  zip_error_t error;
  // The first failure of this source or of an entry's, as Commit returns it.
  absl::Status status;
  bool committed = false;  // libzip sent ZIP_SOURCE_COMMIT_WRITE.
};

zip_int64_t EncryptedZipWriter::WriteCallback(void* userdata, void* data,
                                              zip_uint64_t len,
                                              zip_source_cmd_t command) {
  auto* state = static_cast<WriteState*>(userdata);
  switch (command) {
    case ZIP_SOURCE_SUPPORTS:
      // libzip asks for every command of a writable source; reading is
      // refused below, since the archive is always new (ZIP_TRUNCATE).
      return ZIP_SOURCE_SUPPORTS_WRITABLE;
    case ZIP_SOURCE_STAT:
      // "Does not exist yet": zip_open_from_source then starts empty.
      zip_error_set(&state->error, ZIP_ER_READ, ENOENT);
      return -1;
    case ZIP_SOURCE_BEGIN_WRITE:
      if (state->file->size() != 0) {
        zip_error_set(&state->error, ZIP_ER_INTERNAL, 0);
        return -1;
      }
      state->position = 0;
      return 0;
    case ZIP_SOURCE_WRITE: {
      if (state->cancel != nullptr && state->cancel->load()) {
        return state->Fail(absl::CancelledError("bundle: stopped"),
                           ZIP_ER_CANCELLED);
      }
      absl::Status written = state->file->WriteAt(
          state->position,
          std::string_view(static_cast<const char*>(data), len));
      if (!written.ok()) return state->Fail(written, ZIP_ER_WRITE);
      state->position += static_cast<int64_t>(len);
      return static_cast<zip_int64_t>(len);
    }
    case ZIP_SOURCE_SEEK_WRITE: {
      zip_int64_t to = zip_source_seek_compute_offset(
          static_cast<zip_uint64_t>(state->position),
          static_cast<zip_uint64_t>(state->file->size()), data, len,
          &state->error);
      if (to < 0) return -1;
      state->position = to;
      return 0;
    }
    case ZIP_SOURCE_TELL_WRITE:
      return state->position;
    case ZIP_SOURCE_COMMIT_WRITE:
      // EncryptedZipWriter::Commit checks the file before it commits it.
      state->committed = true;
      return 0;
    case ZIP_SOURCE_ROLLBACK_WRITE:
    case ZIP_SOURCE_REMOVE:
    case ZIP_SOURCE_CLOSE:
    case ZIP_SOURCE_FREE:
      // The temporary file goes with the EncryptedFileWriter.
      return 0;
    case ZIP_SOURCE_ERROR:
      return zip_error_to_data(&state->error, data, len);
    default:
      zip_error_set(&state->error, ZIP_ER_OPNOTSUPP, 0);
      return -1;
  }
}

EncryptedZipWriter::EncryptedZipWriter(
    std::string final_path, std::unique_ptr<EncryptedFileWriter> file)
    : final_path_(std::move(final_path)),
      file_(std::move(file)),
      state_(std::make_unique<WriteState>()) {
  state_->file = file_.get();
}

EncryptedZipWriter::~EncryptedZipWriter() {
  // Frees the sources before the states they point to.
  if (archive_ != nullptr) zip_discard(archive_);
}

absl::StatusOr<std::unique_ptr<EncryptedZipWriter>> EncryptedZipWriter::Create(
    const std::string& final_path, std::string data_key, std::string context) {
  ASSIGN_OR_RETURN(std::unique_ptr<EncryptedFileWriter> file,
                   EncryptedFileWriter::Create(final_path, std::move(data_key),
                                               std::move(context)));
  std::unique_ptr<EncryptedZipWriter> writer(
      new EncryptedZipWriter(final_path, std::move(file)));
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source =
      zip_source_function_create(&WriteCallback, writer->state_.get(), &error);
  if (source != nullptr) {
    writer->archive_ =
        zip_open_from_source(source, ZIP_CREATE | ZIP_TRUNCATE, &error);
    if (writer->archive_ == nullptr) zip_source_free(source);
  }
  if (writer->archive_ == nullptr) {
    absl::Status status = absl::InternalError(absl::StrCat(
        "zip ", final_path, ": cannot create: ", zip_error_strerror(&error)));
    zip_error_fini(&error);
    return status;
  }
  zip_error_fini(&error);
  return writer;
}

void EncryptedZipWriter::set_cancel(const std::atomic<bool>* cancel) {
  state_->cancel = cancel;
}

absl::StatusOr<zip_source_t*> EncryptedZipWriter::NewFileSource(
    const std::string& path, std::string data_key, std::string context) {
  ASSIGN_OR_RETURN(std::unique_ptr<FileSourceState> state,
                   NewFileSourceState(path, std::move(data_key),
                                      std::move(context), /*keep_open=*/false));
  state->sink = &state_->status;
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source =
      zip_source_function_create(&FileSourceCallback, state.get(), &error);
  if (source == nullptr) {
    absl::Status status = absl::InternalError(absl::StrCat(
        "zip source for ", path, ": ", zip_error_strerror(&error)));
    zip_error_fini(&error);
    return status;
  }
  zip_error_fini(&error);
  state.release();  // ZIP_SOURCE_FREE deletes it.
  return source;
}

absl::StatusOr<ZipDigest> EncryptedZipWriter::Commit() {
  if (archive_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("zip ", final_path_, ": already committed"));
  }
  if (zip_close(archive_) != 0) {
    absl::Status status = state_->status;
    if (status.ok()) {
      status = absl::InternalError(
          absl::StrCat("zip ", final_path_, ": ", zip_strerror(archive_)));
    } else {
      status = absl::Status(
          status.code(),
          absl::StrCat("zip ", final_path_, ": ", status.message()));
    }
    zip_discard(archive_);
    archive_ = nullptr;
    return status;
  }
  archive_ = nullptr;
  if (!state_->committed) {
    return absl::InternalError(
        absl::StrCat("zip ", final_path_, ": libzip wrote nothing (no entry)"));
  }
  // Read back what was written: every chunk authenticates, and the digest
  // is of the bytes on disk, not of what we meant to write.
  Sha256 hash;
  std::vector<char> buffer(16 * kEncryptedFileChunkBytes);
  for (int64_t offset = 0; offset < file_->size();) {
    ASSIGN_OR_RETURN(size_t n,
                     file_->ReadAt(offset, buffer.data(), buffer.size()));
    hash.Update(std::string_view(buffer.data(), n));
    offset += static_cast<int64_t>(n);
  }
  ZipDigest digest;
  digest.sha256 = hash.FinishHex();
  digest.size_bytes = file_->size();
  RETURN_IF_ERROR(file_->Commit());
  return digest;
}

absl::StatusOr<ZipArchive> OpenEncryptedZip(const std::string& path,
                                            std::string data_key,
                                            std::string context) {
  ASSIGN_OR_RETURN(std::unique_ptr<FileSourceState> state,
                   NewFileSourceState(path, std::move(data_key),
                                      std::move(context), /*keep_open=*/true));
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source =
      zip_source_function_create(&FileSourceCallback, state.get(), &error);
  if (source == nullptr) {
    absl::Status status = absl::InternalError(absl::StrCat(
        "zip ", path, ": cannot read: ", zip_error_strerror(&error)));
    zip_error_fini(&error);
    return status;
  }
  state.release();  // ZIP_SOURCE_FREE deletes it.
  zip_t* archive =
      zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (archive == nullptr) {
    zip_source_free(source);
    absl::Status status = absl::DataLossError(
        absl::StrCat("zip ", path,
                     ": does not open as a ZIP: ", zip_error_strerror(&error)));
    zip_error_fini(&error);
    return status;
  }
  zip_error_fini(&error);
  return ZipArchive(archive);
}

}  // namespace dsar
