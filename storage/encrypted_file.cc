#include "storage/encrypted_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dsar {
namespace {

constexpr char kMagic[] = "DSARENC1";
constexpr size_t kMagicBytes = 8;
constexpr size_t kFileIdBytes = 16;
constexpr size_t kHeaderBytes = kMagicBytes + 4 + kFileIdBytes;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kChunkOverhead = kNonceBytes + kTagBytes;
// Bounds what a reader allocates before anything has authenticated.
constexpr uint32_t kMaxChunkBytes = 16 << 20;
// index: u64 | final: u8.
constexpr size_t kAadSuffixBytes = 9;

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat("encrypted file: ", what, " ", path,
                                          ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, const unsigned char* data, size_t length,
                      int64_t offset, const std::string& path) {
  while (length > 0) {
    ssize_t n = ::pwrite(fd, data, length, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path);
    }
    data += n;
    length -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

// Reads exactly `length` bytes; DATA_LOSS when the file ends first.
absl::Status ReadAll(int fd, unsigned char* data, size_t length, int64_t offset,
                     const std::string& path) {
  while (length > 0) {
    ssize_t n = ::pread(fd, data, length, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", path);
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("encrypted file ", path, ": truncated"));
    }
    data += n;
    length -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

// mkdir -p where each directory created is 0700: the files below hold
// personal data. Existing directories are left as they are.
absl::Status MakePrivateDirectories(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    errno = ENOTDIR;
    return ErrnoError("create directory", dir);
  }
  std::string parent = DirName(dir);
  if (parent != dir) RETURN_IF_ERROR(MakePrivateDirectories(parent));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError("create directory", dir);
  }
  return absl::OkStatus();
}

absl::Status CheckKey(const std::string& key) {
  if (key.size() != kEncryptedFileKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("encrypted file: data key must have ",
                     kEncryptedFileKeyBytes, " bytes, got ", key.size()));
  }
  return absl::OkStatus();
}

void PutU32(uint32_t value, unsigned char* out) {
  for (int i = 3; i >= 0; --i, value >>= 8) out[i] = value & 0xff;
}

uint32_t GetU32(const unsigned char* in) {
  return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) |
         (uint32_t{in[2]} << 8) | uint32_t{in[3]};
}

}  // namespace

std::string ExportFileContext(std::string_view request_id) {
  return std::string("export:").append(request_id);
}

std::string BundleFileContext(std::string_view request_id) {
  return std::string("bundle:").append(request_id);
}

namespace internal {

class ChunkCipher {
 public:
  // `key` has been checked.
  ChunkCipher(std::string key, std::string_view context,
              const unsigned char* header)
      : key_(std::move(key)), chunk_bytes_(GetU32(header + kMagicBytes)) {
    aad_.reserve(context.size() + kHeaderBytes + kAadSuffixBytes);
    aad_.insert(aad_.end(), context.begin(), context.end());
    aad_.insert(aad_.end(), header, header + kHeaderBytes);
    aad_.resize(aad_.size() + kAadSuffixBytes);
  }
  ~ChunkCipher() {
    OPENSSL_cleanse(key_.data(), key_.size());
    EVP_CIPHER_CTX_free(encrypt_);
    EVP_CIPHER_CTX_free(decrypt_);
  }
  ChunkCipher(const ChunkCipher&) = delete;
  ChunkCipher& operator=(const ChunkCipher&) = delete;

  size_t chunk_bytes() const { return chunk_bytes_; }
  int64_t ChunkOffset(int64_t index) const {
    return static_cast<int64_t>(kHeaderBytes) +
           index * static_cast<int64_t>(chunk_bytes_ + kChunkOverhead);
  }

  // Writes nonce | ciphertext | tag of `length` bytes of `plain` to `chunk`.
  // `plain` may be chunk + kNonceBytes (in place). False on an OpenSSL
  // failure, which does not happen with a valid key.
  bool Seal(int64_t index, bool final, const unsigned char* plain,
            size_t length, unsigned char* chunk) {
    if (encrypt_ == nullptr && !InitContext(&encrypt_, /*encrypt=*/true)) {
      return false;
    }
    if (RAND_bytes(chunk, kNonceBytes) != 1) return false;
    SetAadSuffix(index, final);
    int out = 0;
    unsigned char* body = chunk + kNonceBytes;
    return EVP_EncryptInit_ex(encrypt_, nullptr, nullptr, nullptr, chunk) ==
               1 &&
           EVP_EncryptUpdate(encrypt_, nullptr, &out, aad_.data(),
                             static_cast<int>(aad_.size())) == 1 &&
           (length == 0 || EVP_EncryptUpdate(encrypt_, body, &out, plain,
                                             static_cast<int>(length)) == 1) &&
           EVP_EncryptFinal_ex(encrypt_, body + length, &out) == 1 &&
           EVP_CIPHER_CTX_ctrl(encrypt_, EVP_CTRL_GCM_GET_TAG, kTagBytes,
                               body + length) == 1;
  }

  // Decrypts `chunk` (nonce | `length` bytes of ciphertext | tag) into
  // `plain`, which may be chunk + kNonceBytes. False when it does not
  // authenticate as chunk `index` with that finality.
  bool Open(int64_t index, bool final, unsigned char* chunk, size_t length,
            unsigned char* plain) {
    if (decrypt_ == nullptr && !InitContext(&decrypt_, /*encrypt=*/false)) {
      return false;
    }
    SetAadSuffix(index, final);
    int out = 0;
    unsigned char* body = chunk + kNonceBytes;
    return EVP_DecryptInit_ex(decrypt_, nullptr, nullptr, nullptr, chunk) ==
               1 &&
           EVP_DecryptUpdate(decrypt_, nullptr, &out, aad_.data(),
                             static_cast<int>(aad_.size())) == 1 &&
           (length == 0 || EVP_DecryptUpdate(decrypt_, plain, &out, body,
                                             static_cast<int>(length)) == 1) &&
           EVP_CIPHER_CTX_ctrl(decrypt_, EVP_CTRL_GCM_SET_TAG, kTagBytes,
                               body + length) == 1 &&
           EVP_DecryptFinal_ex(decrypt_, plain + length, &out) == 1;
  }

 private:
  // One context per direction, keyed once; each chunk only sets its nonce.
  bool InitContext(EVP_CIPHER_CTX** ctx, bool encrypt) {
    *ctx = EVP_CIPHER_CTX_new();
    if (*ctx == nullptr) return false;
    const unsigned char* key =
        reinterpret_cast<const unsigned char*>(key_.data());
    return encrypt ? EVP_EncryptInit_ex(*ctx, EVP_aes_256_gcm(), nullptr, key,
                                        nullptr) == 1
                   : EVP_DecryptInit_ex(*ctx, EVP_aes_256_gcm(), nullptr, key,
                                        nullptr) == 1;
  }

  void SetAadSuffix(int64_t index, bool final) {
    unsigned char* suffix = aad_.data() + aad_.size() - kAadSuffixBytes;
    uint64_t value = static_cast<uint64_t>(index);
    for (int i = 7; i >= 0; --i, value >>= 8) suffix[i] = value & 0xff;
    suffix[8] = final ? 1 : 0;
  }

  std::string key_;
  size_t chunk_bytes_;
  std::vector<unsigned char> aad_;
  EVP_CIPHER_CTX* encrypt_ = nullptr;
  EVP_CIPHER_CTX* decrypt_ = nullptr;
};

}  // namespace internal

// ---------------------------------------------------------------------------
// EncryptedFileWriter

EncryptedFileWriter::EncryptedFileWriter(
    std::string final_path, std::string temp_path, int fd,
    std::unique_ptr<internal::ChunkCipher> cipher)
    : final_path_(std::move(final_path)),
      temp_path_(std::move(temp_path)),
      fd_(fd),
      cipher_(std::move(cipher)),
      tail_(new unsigned char[cipher_->chunk_bytes() + kChunkOverhead]) {}

absl::StatusOr<std::unique_ptr<EncryptedFileWriter>>
EncryptedFileWriter::Create(const std::string& final_path, std::string data_key,
                            std::string context) {
  RETURN_IF_ERROR(CheckKey(data_key));
  unsigned char header[kHeaderBytes];
  std::memcpy(header, kMagic, kMagicBytes);
  PutU32(kEncryptedFileChunkBytes, header + kMagicBytes);
  unsigned char* file_id = header + kMagicBytes + 4;
  if (RAND_bytes(file_id, kFileIdBytes) != 1) {
    return absl::InternalError("encrypted file: no randomness for a file id");
  }
  RETURN_IF_ERROR(MakePrivateDirectories(DirName(final_path)));
  // The file id makes the name unique; O_EXCL makes sure of it.
  std::string temp_path =
      absl::StrCat(final_path, ".",
                   absl::BytesToHexString(absl::string_view(
                       reinterpret_cast<const char*>(file_id), 8)),
                   ".tmp");
  int fd =
      ::open(temp_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create", temp_path);
  auto cipher = std::make_unique<internal::ChunkCipher>(std::move(data_key),
                                                        context, header);
  std::unique_ptr<EncryptedFileWriter> writer(new EncryptedFileWriter(
      final_path, std::move(temp_path), fd, std::move(cipher)));
  // The umask may have taken bits from 0600; nothing else may have them.
  if (::fchmod(fd, 0600) != 0) return ErrnoError("chmod", writer->temp_path_);
  RETURN_IF_ERROR(WriteAll(fd, header, kHeaderBytes, 0, writer->temp_path_));
  return writer;
}

EncryptedFileWriter::~EncryptedFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
  // Plaintext personal data does not outlive the writer in freed memory.
  const size_t buffer_bytes = cipher_->chunk_bytes() + kChunkOverhead;
  OPENSSL_cleanse(tail_.get(), buffer_bytes);
  if (scratch_ != nullptr) OPENSSL_cleanse(scratch_.get(), buffer_bytes);
}

absl::Status EncryptedFileWriter::CheckWritable() const {
  if (committed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("encrypted file ", final_path_, ": already committed"));
  }
  return error_;
}

unsigned char* EncryptedFileWriter::Scratch() {
  if (scratch_ == nullptr) {
    scratch_.reset(new unsigned char[cipher_->chunk_bytes() + kChunkOverhead]);
  }
  return scratch_.get();
}

absl::Status EncryptedFileWriter::SealAndWrite(int64_t index,
                                               const unsigned char* plaintext,
                                               size_t length, bool final,
                                               unsigned char* chunk) {
  if (!cipher_->Seal(index, final, plaintext, length, chunk)) {
    return error_ = absl::InternalError(absl::StrCat(
               "encrypted file ", temp_path_, ": AES-256-GCM failed"));
  }
  absl::Status written = WriteAll(fd_, chunk, length + kChunkOverhead,
                                  cipher_->ChunkOffset(index), temp_path_);
  if (!written.ok()) error_ = written;
  return written;
}

absl::Status EncryptedFileWriter::Append(std::string_view bytes) {
  RETURN_IF_ERROR(CheckWritable());
  const size_t chunk_bytes = cipher_->chunk_bytes();
  const unsigned char* in =
      reinterpret_cast<const unsigned char*>(bytes.data());
  size_t left = bytes.size();
  while (left > 0) {
    if (tail_size_ == 0 && left >= chunk_bytes) {
      // A whole chunk: encrypt from the caller's bytes, no copy.
      RETURN_IF_ERROR(
          SealAndWrite(tail_index_, in, chunk_bytes, false, tail_.get()));
      in += chunk_bytes;
      left -= chunk_bytes;
      ++tail_index_;
      size_ += static_cast<int64_t>(chunk_bytes);
      continue;
    }
    size_t n = std::min(chunk_bytes - tail_size_, left);
    std::memcpy(tail_.get() + kNonceBytes + tail_size_, in, n);
    tail_size_ += n;
    in += n;
    left -= n;
    size_ += static_cast<int64_t>(n);
    if (tail_size_ == chunk_bytes) {
      RETURN_IF_ERROR(SealAndWrite(tail_index_, tail_.get() + kNonceBytes,
                                   chunk_bytes, false, tail_.get()));
      ++tail_index_;
      tail_size_ = 0;
    }
  }
  return absl::OkStatus();
}

absl::Status EncryptedFileWriter::ReadSealedChunk(int64_t index,
                                                  unsigned char* chunk) {
  const size_t chunk_bytes = cipher_->chunk_bytes();
  absl::Status read = ReadAll(fd_, chunk, chunk_bytes + kChunkOverhead,
                              cipher_->ChunkOffset(index), temp_path_);
  if (!read.ok()) return error_ = read;
  if (!cipher_->Open(index, false, chunk, chunk_bytes, chunk + kNonceBytes)) {
    return error_ = absl::DataLossError(
               absl::StrCat("encrypted file ", temp_path_, ": chunk ", index,
                            " does not authenticate when read back"));
  }
  return absl::OkStatus();
}

absl::Status EncryptedFileWriter::RewriteSealedChunk(int64_t index,
                                                     size_t within,
                                                     std::string_view patch) {
  const size_t chunk_bytes = cipher_->chunk_bytes();
  unsigned char* chunk = Scratch();
  if (within != 0 || patch.size() != chunk_bytes) {
    RETURN_IF_ERROR(ReadSealedChunk(index, chunk));
  }
  std::memcpy(chunk + kNonceBytes + within, patch.data(), patch.size());
  return SealAndWrite(index, chunk + kNonceBytes, chunk_bytes, false, chunk);
}

absl::Status EncryptedFileWriter::WriteAt(int64_t offset,
                                          std::string_view bytes) {
  RETURN_IF_ERROR(CheckWritable());
  if (offset < 0 || offset > size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("encrypted file ", final_path_, ": write at ", offset,
                     " outside [0, ", size_, "]"));
  }
  const int64_t chunk_bytes = static_cast<int64_t>(cipher_->chunk_bytes());
  const int64_t tail_start = tail_index_ * chunk_bytes;
  while (!bytes.empty() && offset < tail_start) {
    int64_t index = offset / chunk_bytes;
    size_t within = static_cast<size_t>(offset % chunk_bytes);
    size_t n =
        std::min(static_cast<size_t>(chunk_bytes) - within, bytes.size());
    RETURN_IF_ERROR(RewriteSealedChunk(index, within, bytes.substr(0, n)));
    offset += static_cast<int64_t>(n);
    bytes.remove_prefix(n);
  }
  if (bytes.empty()) return absl::OkStatus();
  // Overwrite what the tail holds, append the rest.
  size_t within = static_cast<size_t>(offset - tail_start);
  size_t n = std::min(tail_size_ - within, bytes.size());
  std::memcpy(tail_.get() + kNonceBytes + within, bytes.data(), n);
  bytes.remove_prefix(n);
  return Append(bytes);
}

absl::StatusOr<size_t> EncryptedFileWriter::ReadAt(int64_t offset, char* out,
                                                   size_t n) {
  RETURN_IF_ERROR(error_);
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("encrypted file ", final_path_, ": read at ", offset));
  }
  if (committed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("encrypted file ", final_path_, ": already committed"));
  }
  const int64_t chunk_bytes = static_cast<int64_t>(cipher_->chunk_bytes());
  const int64_t tail_start = tail_index_ * chunk_bytes;
  size_t done = 0;
  while (done < n && offset < size_) {
    size_t count;
    if (offset < tail_start) {
      int64_t index = offset / chunk_bytes;
      size_t within = static_cast<size_t>(offset % chunk_bytes);
      count = std::min(static_cast<size_t>(chunk_bytes) - within, n - done);
      unsigned char* chunk = Scratch();
      RETURN_IF_ERROR(ReadSealedChunk(index, chunk));
      std::memcpy(out + done, chunk + kNonceBytes + within, count);
    } else {
      size_t within = static_cast<size_t>(offset - tail_start);
      count = std::min(tail_size_ - within, n - done);
      std::memcpy(out + done, tail_.get() + kNonceBytes + within, count);
    }
    done += count;
    offset += static_cast<int64_t>(count);
  }
  return done;
}

absl::Status EncryptedFileWriter::Finish(bool sync) {
  RETURN_IF_ERROR(CheckWritable());
  RETURN_IF_ERROR(SealAndWrite(tail_index_, tail_.get() + kNonceBytes,
                               tail_size_, true, tail_.get()));
  if (sync && ::fsync(fd_) != 0) {
    return error_ = ErrnoError("fsync", temp_path_);
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return error_ = ErrnoError("close", temp_path_);
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return error_ = ErrnoError("rename", temp_path_);
  }
  committed_ = true;
  if (sync) return FsyncDirectory(DirName(final_path_));
  return absl::OkStatus();
}

absl::Status EncryptedFileWriter::Commit() { return Finish(/*sync=*/true); }

absl::Status EncryptedFileWriter::CommitUnsynced() {
  return Finish(/*sync=*/false);
}

// ---------------------------------------------------------------------------
// EncryptedFileReader

EncryptedFileReader::EncryptedFileReader(
    std::string path, int fd, std::unique_ptr<internal::ChunkCipher> cipher,
    int64_t size)
    : path_(std::move(path)),
      fd_(fd),
      cipher_(std::move(cipher)),
      size_(size),
      chunk_count_(size / static_cast<int64_t>(cipher_->chunk_bytes()) + 1),
      buffer_(new unsigned char[cipher_->chunk_bytes() + kChunkOverhead]) {}

EncryptedFileReader::~EncryptedFileReader() {
  ::close(fd_);
  OPENSSL_cleanse(buffer_.get(), cipher_->chunk_bytes() + kChunkOverhead);
}

absl::StatusOr<std::unique_ptr<EncryptedFileReader>> EncryptedFileReader::Open(
    const std::string& path, std::string data_key, std::string context) {
  RETURN_IF_ERROR(CheckKey(data_key));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("encrypted file ", path, ": does not exist"));
    }
    return ErrnoError("open", path);
  }
  auto fail = [&](absl::Status status) {
    ::close(fd);
    return status;
  };
  auto corrupt = [&](absl::string_view why) {
    return fail(
        absl::DataLossError(absl::StrCat("encrypted file ", path, ": ", why)));
  };
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail(ErrnoError("stat", path));
  int64_t file_size = static_cast<int64_t>(st.st_size);
  unsigned char header[kHeaderBytes];
  if (file_size < static_cast<int64_t>(kHeaderBytes + kChunkOverhead)) {
    return corrupt("too short for the header and a final chunk");
  }
  absl::Status read = ReadAll(fd, header, kHeaderBytes, 0, path);
  if (!read.ok()) return fail(read);
  if (std::memcmp(header, kMagic, kMagicBytes) != 0) {
    return corrupt("not an encrypted file (bad magic)");
  }
  uint32_t chunk_bytes = GetU32(header + kMagicBytes);
  if (chunk_bytes == 0 || chunk_bytes > kMaxChunkBytes) {
    return corrupt(absl::StrCat("unsupported chunk size ", chunk_bytes));
  }
  // Full chunks take C + overhead bytes; the final one less than that.
  const int64_t stride = static_cast<int64_t>(chunk_bytes + kChunkOverhead);
  const int64_t body = file_size - static_cast<int64_t>(kHeaderBytes);
  const int64_t full_chunks = body / stride;
  const int64_t last = body % stride - static_cast<int64_t>(kChunkOverhead);
  if (last < 0) return corrupt("truncated inside a chunk");
  auto cipher = std::make_unique<internal::ChunkCipher>(std::move(data_key),
                                                        context, header);
  std::unique_ptr<EncryptedFileReader> reader(new EncryptedFileReader(
      path, fd, std::move(cipher),
      full_chunks * static_cast<int64_t>(chunk_bytes) + last));
  // The final chunk authenticates the header, the key, the context and
  // where the file ends; it stays cached.
  unsigned char* plain = reader->buffer_.get() + kNonceBytes;
  RETURN_IF_ERROR(reader->DecryptChunk(full_chunks, plain));
  reader->cached_index_ = full_chunks;
  return reader;
}

size_t EncryptedFileReader::ChunkSize(int64_t index) const {
  const int64_t chunk_bytes = static_cast<int64_t>(cipher_->chunk_bytes());
  if (index + 1 < chunk_count_) return static_cast<size_t>(chunk_bytes);
  return static_cast<size_t>(size_ - index * chunk_bytes);
}

absl::Status EncryptedFileReader::DecryptChunk(int64_t index,
                                               unsigned char* out) {
  cached_index_ = -1;
  size_t length = ChunkSize(index);
  bool final = index + 1 == chunk_count_;
  RETURN_IF_ERROR(ReadAll(fd_, buffer_.get(), length + kChunkOverhead,
                          cipher_->ChunkOffset(index), path_));
  if (!cipher_->Open(index, final, buffer_.get(), length, out)) {
    std::memset(out, 0, length);
    return absl::DataLossError(absl::StrCat(
        "encrypted file ", path_, ": chunk ", index,
        " does not authenticate (another key or context, truncated or "
        "altered)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> EncryptedFileReader::ReadAt(int64_t offset, char* out,
                                                   size_t n) {
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("encrypted file ", path_, ": read at ", offset));
  }
  const int64_t chunk_bytes = static_cast<int64_t>(cipher_->chunk_bytes());
  unsigned char* cached = buffer_.get() + kNonceBytes;
  size_t done = 0;
  while (done < n && offset < size_) {
    int64_t index = offset / chunk_bytes;
    size_t within = static_cast<size_t>(offset % chunk_bytes);
    size_t length = ChunkSize(index);
    size_t count = std::min(length - within, n - done);
    unsigned char* target = reinterpret_cast<unsigned char*>(out + done);
    if (index == cached_index_) {
      std::memcpy(target, cached + within, count);
    } else if (within == 0 && count == length) {
      RETURN_IF_ERROR(DecryptChunk(index, target));
    } else {
      RETURN_IF_ERROR(DecryptChunk(index, cached));
      cached_index_ = index;
      std::memcpy(target, cached + within, count);
    }
    done += count;
    offset += static_cast<int64_t>(count);
  }
  return done;
}

absl::StatusOr<std::string> EncryptedFileSha256Hex(const std::string& path,
                                                   std::string data_key,
                                                   std::string context) {
  ASSIGN_OR_RETURN(
      std::unique_ptr<EncryptedFileReader> reader,
      EncryptedFileReader::Open(path, std::move(data_key), std::move(context)));
  Sha256 hash;
  std::vector<char> buffer(16 * kEncryptedFileChunkBytes);
  for (int64_t offset = 0; offset < reader->size();) {
    ASSIGN_OR_RETURN(size_t n,
                     reader->ReadAt(offset, buffer.data(), buffer.size()));
    hash.Update(std::string_view(buffer.data(), n));
    offset += static_cast<int64_t>(n);
  }
  return hash.FinishHex();
}

}  // namespace dsar
