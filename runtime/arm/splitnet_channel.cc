/*
 * splitnet: the board's end of the frame channel, built into TVM's C++ RPC server (tvm_rpc).
 *
 * A plain TCP connection beside the RPC session: the host writes each frame to it as soon as
 * the frame exists, while the board still computes the one before, and the board's recv call
 * then takes it from its socket straight into the input tensor. The same four functions, with
 * the same wire format, are in splitnet's runtime/board_server.py for TVM's Python server.
 *
 *   splitnet.channel.open(host) -> port      listen on host, on a free port
 *   splitnet.channel.accept() -> version     take the host's connection and its hello
 *   splitnet.channel.recv(tensor, seq) -> n  fill tensor with message seq
 *   splitnet.channel.call(module, name, n, tensor_0, seq_0, ..., tensor_n-1, seq_n-1, *rest)
 *       -> bytes                             fill each tensor with its message (seq -1: it holds
 *                                            its input already), call module's function name
 *                                            on the tensors and rest, and return its output's
 *                                            bytes after two uint64s: the nanoseconds the
 *                                            messages took to take in, and the nanoseconds the
 *                                            function ran (the part's compute, timed in the
 *                                            same call the host times)
 *
 * The call is one frame's whole visit to the board in one RPC round trip, where recv, the
 * call, the output's copy and its free would be four: the host's CPU per frame is the boards'
 * compute time when they share cores, and each round trip adds to the frame's latency.
 *
 * A message is a header (uint64 sequence number, uint64 byte count, little-endian) and the
 * bytes. Messages read past on the way to the one wanted are kept (the last 64), since two
 * frames in flight may take their messages in either order. tvm_rpc forks one process per
 * session, so the state below is one session's.
 */
#include <arpa/inet.h>
#include <dlpack/dlpack.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>
#include <tvm/ffi/reflection/registry.h>
#include <tvm/ffi/string.h>
#include <tvm/runtime/logging.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace splitnet_channel {

constexpr char kMagic[] = "SPLTCHN1";
constexpr int64_t kVersion = 1;
constexpr int64_t kStash = 64;
constexpr int kAcceptTimeoutMs = 30000;

struct Channel {
  int listener = -1;
  int conn = -1;
  int64_t read_upto = -1;  // the last sequence number read from the socket
  std::map<int64_t, std::vector<char>> stash;
};

Channel& State() {
  static Channel channel;
  return channel;
}

void ReadFull(int fd, char* data, size_t n) {
  while (n > 0) {
    ssize_t got = recv(fd, data, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) LOG(FATAL) << "the frame channel closed";
    data += got;
    n -= static_cast<size_t>(got);
  }
}

int64_t Open(std::string host) {
  Channel& c = State();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    LOG(FATAL) << "frame channel: " << host << " is not an IPv4 address";
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 1) != 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    LOG(FATAL) << "frame channel: cannot listen on " << host << ": " << strerror(err);
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  c.listener = fd;
  return ntohs(addr.sin_port);
}

int64_t Accept() {
  Channel& c = State();
  if (c.listener < 0) LOG(FATAL) << "splitnet.channel.accept before splitnet.channel.open";
  pollfd waiting{c.listener, POLLIN, 0};
  int ready = poll(&waiting, 1, kAcceptTimeoutMs);
  int fd = ready == 1 ? accept(c.listener, nullptr, nullptr) : -1;
  close(c.listener);
  c.listener = -1;
  if (fd < 0) LOG(FATAL) << "frame channel: the host did not connect";
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c.conn = fd;
  char hello[sizeof(kMagic) - 1];
  ReadFull(fd, hello, sizeof(hello));
  if (std::memcmp(hello, kMagic, sizeof(hello)) != 0) LOG(FATAL) << "the frame channel's peer is not a splitnet host";
  return kVersion;
}

int64_t Recv(DLTensor* tensor, int64_t seq) {
  Channel& c = State();
  if (c.conn < 0) LOG(FATAL) << "splitnet.channel.recv before splitnet.channel.accept";
  size_t nbytes = (static_cast<size_t>(tensor->dtype.bits) * tensor->dtype.lanes + 7) / 8;
  for (int i = 0; i < tensor->ndim; ++i) nbytes *= static_cast<size_t>(tensor->shape[i]);
  char* dst = static_cast<char*>(tensor->data) + tensor->byte_offset;
  auto kept = c.stash.find(seq);
  if (kept != c.stash.end()) {
    if (kept->second.size() != nbytes) LOG(FATAL) << "frame channel message " << seq << " does not fit its tensor";
    std::memcpy(dst, kept->second.data(), nbytes);
    c.stash.erase(kept);
  } else {
    for (;;) {
      if (seq <= c.read_upto) LOG(FATAL) << "frame channel message " << seq << " was read and dropped";
      uint64_t header[2];
      ReadFull(c.conn, reinterpret_cast<char*>(header), sizeof(header));
      int64_t got = static_cast<int64_t>(header[0]);
      size_t size = static_cast<size_t>(header[1]);
      c.read_upto = got;
      if (got == seq && size == nbytes) {
        ReadFull(c.conn, dst, size);  // straight into the tensor: the only copy on the board
        break;
      }
      std::vector<char> payload(size);
      ReadFull(c.conn, payload.data(), size);
      if (got == seq) LOG(FATAL) << "frame channel message " << seq << " does not fit its tensor";
      c.stash[got] = std::move(payload);
    }
  }
  for (auto it = c.stash.begin(); it != c.stash.end() && it->first < seq - kStash;) it = c.stash.erase(it);
  return static_cast<int64_t>(nbytes);
}

void Call(tvm::ffi::PackedArgs args, tvm::ffi::Any* rv) {
  namespace ffi = tvm::ffi;
  if (args.size() < 3) LOG(FATAL) << "splitnet.channel.call(module, name, n, tensor, seq, ...)";
  ffi::Module module = args[0].cast<ffi::Module>();
  std::string name = args[1].cast<std::string>();
  int64_t n = args[2].cast<int64_t>();
  if (n < 0 || 3 + 2 * n > args.size()) LOG(FATAL) << "splitnet.channel.call: " << n << " inputs, too few arguments";
  std::vector<ffi::AnyView> call_args;
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    int64_t seq = args[4 + 2 * i].cast<int64_t>();
    if (seq >= 0) Recv(args[3 + 2 * i].cast<DLTensor*>(), seq);
    call_args.push_back(args[3 + 2 * i]);
  }
  uint64_t took_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  for (int i = static_cast<int>(3 + 2 * n); i < args.size(); ++i) call_args.push_back(args[i]);
  ffi::Optional<ffi::Function> func = module->GetFunction(name);
  if (!func.has_value()) LOG(FATAL) << "splitnet.channel.call: the module has no function " << name;
  ffi::Any out;
  auto ran_from = std::chrono::steady_clock::now();
  func.value().CallPacked(call_args.data(), static_cast<int32_t>(call_args.size()), &out);
  uint64_t ran_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - ran_from).count());
  auto tensor = out.as<ffi::Tensor>();
  if (!tensor.has_value()) LOG(FATAL) << "splitnet.channel.call: " << name << " returned " << out.GetTypeKey() << ", not a tensor";
  const DLTensor* dl = tensor.value().GetDLTensorPtr();
  if (dl->device.device_type != kDLCPU || !ffi::IsContiguous(*dl)) {
    LOG(FATAL) << "splitnet.channel.call: " << name << " returned a tensor that is not contiguous in CPU memory";
  }
  size_t nbytes = ffi::GetDataSize(*dl);
  const uint64_t header[2] = {took_ns, ran_ns};  // little-endian on every board splitnet builds for
  std::string result(sizeof(header) + nbytes, '\0');
  std::memcpy(result.data(), header, sizeof(header));
  std::memcpy(result.data() + sizeof(header), static_cast<const char*>(dl->data) + dl->byte_offset, nbytes);
  *rv = ffi::Bytes(std::move(result));
}

}  // namespace splitnet_channel

TVM_FFI_STATIC_INIT_BLOCK() {
  namespace refl = tvm::ffi::reflection;
  refl::GlobalDef()
      .def("splitnet.channel.open", splitnet_channel::Open)
      .def("splitnet.channel.accept", splitnet_channel::Accept)
      .def("splitnet.channel.recv", splitnet_channel::Recv)
      .def_packed("splitnet.channel.call", splitnet_channel::Call);
}
