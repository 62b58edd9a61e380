#ifndef DSAR_STORAGE_REQUEST_STATUS_H_
#define DSAR_STORAGE_REQUEST_STATUS_H_

#include "dsar/v1/requests.pb.h"

namespace dsar {

// COMPLETED, FAILED and CANCELLED are final: nothing changes a request after.
inline bool IsTerminalStatus(v1::RequestStatus status) {
  return status == v1::COMPLETED || status == v1::FAILED ||
         status == v1::CANCELLED;
}

}  // namespace dsar

#endif  // DSAR_STORAGE_REQUEST_STATUS_H_
