#include "engine/request_validation.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inventory/inventory.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kInventoryYaml[] = R"yaml(
stores:
  - name: accounts
    kind: sqlite
    path: accounts.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
        pii_fields: {email: contact, full_name: identity}
  - name: orders
    kind: sqlite
    path: orders.db
    tables:
      - name: orders
        identity_fields: {user_id: user_id}
    identities_from: [accounts]
  - name: activity
    kind: jsonl
    path: activity.jsonl
    identity_fields: {user_id: user_id}
    pii_fields: {ip: online_identifiers}
)yaml";

class RequestValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Inventory> inventory =
        Inventory::Parse(kInventoryYaml, "/srv/dsar");
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = std::move(*inventory);
  }

  absl::Status Validate(const v1::CreateRequestRequest& request) const {
    return ValidateCreateRequest(request, inventory_);
  }

  Inventory inventory_;
};

v1::SubjectIdentity Identity(v1::IdentityType type, const std::string& value,
                             const std::string& custom_type = "") {
  v1::SubjectIdentity identity;
  identity.set_type(type);
  identity.set_value(value);
  identity.set_custom_type(custom_type);
  return identity;
}

// A valid ACCESS request; each rejection case breaks one thing in it.
v1::CreateRequestRequest ValidRequest() {
  v1::CreateRequestRequest request;
  request.set_type(v1::ACCESS);
  *request.add_identities() = Identity(v1::EMAIL, "jane@example.com");
  return request;
}

void ExpectRejected(const absl::Status& status, absl::StatusCode code,
                    const std::string& field_path) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith(field_path + ":"))
      << status;
}

TEST_F(RequestValidationTest, AcceptsTheBaseRequest) {
  EXPECT_TRUE(Validate(ValidRequest()).ok()) << Validate(ValidRequest());
}

TEST_F(RequestValidationTest, AcceptsEverySupportedShape) {
  v1::CreateRequestRequest request;
  request.set_type(v1::PORTABILITY);
  request.set_regulation("CCPA");
  *request.add_identities() =
      Identity(v1::EMAIL, "  Jane.Doe+dsar@Mail.Example.co.uk ");
  *request.add_identities() = Identity(v1::USER_ID, "42");
  *request.add_identities() = Identity(v1::PHONE, "+44 (20) 7946-0958");
  *request.add_identities() = Identity(v1::CUSTOM, "C-1001", "customer_number");
  request.set_idempotency_key(std::string(128, 'k'));
  request.add_stores("orders");
  request.add_stores("accounts");
  EXPECT_TRUE(Validate(request).ok()) << Validate(request);

  request.set_type(v1::ERASURE);
  request.set_regulation("GDPR");
  EXPECT_TRUE(Validate(request).ok()) << Validate(request);
}

TEST_F(RequestValidationTest, RejectsUnspecifiedAndUnknownTypes) {
  v1::CreateRequestRequest request = ValidRequest();
  request.set_type(v1::REQUEST_TYPE_UNSPECIFIED);
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument, "type");

  request.set_type(static_cast<v1::RequestType>(99));
  absl::Status status = Validate(request);
  ExpectRejected(status, absl::StatusCode::kInvalidArgument, "type");
  EXPECT_THAT(std::string(status.message()), HasSubstr("99"));
}

v1::FieldCorrection Correction(const std::string& store,
                               const std::string& field,
                               const std::string& value,
                               const std::string& collection = "") {
  v1::FieldCorrection correction;
  correction.set_store(store);
  correction.set_collection(collection);
  correction.set_field(field);
  correction.set_value(value);
  return correction;
}

TEST_F(RequestValidationTest, RestrictionAndObjectionAreAccepted) {
  for (v1::RequestType type : {v1::RESTRICTION, v1::OBJECTION}) {
    v1::CreateRequestRequest request = ValidRequest();
    request.set_type(type);
    EXPECT_TRUE(Validate(request).ok())
        << v1::RequestType_Name(type) << ": " << Validate(request);
  }
}

TEST_F(RequestValidationTest, RectificationNeedsCorrections) {
  v1::CreateRequestRequest request = ValidRequest();
  request.set_type(v1::RECTIFICATION);
  absl::Status status = Validate(request);
  ExpectRejected(status, absl::StatusCode::kInvalidArgument, "corrections");
  EXPECT_THAT(std::string(status.message()), HasSubstr("RECTIFICATION"));

  *request.add_corrections() = Correction("accounts", "full_name", "Jane Roe");
  EXPECT_TRUE(Validate(request).ok()) << Validate(request);
}

TEST_F(RequestValidationTest, AcceptsCorrectionsOfPersonalDataFields) {
  v1::CreateRequestRequest request = ValidRequest();
  request.set_type(v1::RECTIFICATION);
  // By store and collection, by store, and in every store with the field.
  *request.add_corrections() =
      Correction("accounts", "full_name", "Jane Roe", "users");
  *request.add_corrections() = Correction("activity", "ip", "192.0.2.1");
  *request.add_corrections() = Correction("", "email", "jane@example.org");
  EXPECT_TRUE(Validate(request).ok()) << Validate(request);
}

TEST_F(RequestValidationTest, CorrectedValuesMustFitTheFieldsType) {
  v1::CreateRequestRequest request = ValidRequest();
  request.set_type(v1::RECTIFICATION);
  *request.add_corrections() = Correction("accounts", "full_name", "Jane Roe");
  // users.email is the email identity field: its type defaults to email.
  for (const v1::FieldCorrection& bad :
       {Correction("accounts", "email", "not an email", "users"),
        Correction("", "email", "jane@localhost")}) {
    v1::CreateRequestRequest with_bad = request;
    *with_bad.add_corrections() = bad;
    absl::Status status = Validate(with_bad);
    ExpectRejected(status, absl::StatusCode::kInvalidArgument,
                   "corrections[1].value");
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("not an email address"));
  }
  // The value itself is never echoed.
  v1::CreateRequestRequest echo = request;
  *echo.add_corrections() = Correction("", "email", "jane@localhost");
  EXPECT_THAT(std::string(Validate(echo).message()),
              Not(HasSubstr("jane@localhost")));

  // Declared types (field_types) are checked too.
  absl::StatusOr<Inventory> typed = Inventory::Parse(
      absl::StrReplaceAll(kInventoryYaml,
                          {{"pii_fields: {email: contact, full_name: identity}",
                            "pii_fields: {email: contact, full_name: identity, "
                            "born: identity}\n        field_types: {born: "
                            "date}"}}),
      "/srv/dsar");
  ASSERT_TRUE(typed.ok()) << typed.status();
  *request.mutable_corrections(0) =
      Correction("accounts", "born", "1990-02-30");
  absl::Status status = ValidateCreateRequest(request, *typed);
  ExpectRejected(status, absl::StatusCode::kInvalidArgument,
                 "corrections[0].value");
  EXPECT_THAT(std::string(status.message()), HasSubstr("not a date"));
  *request.mutable_corrections(0) =
      Correction("accounts", "born", "1990-02-28");
  EXPECT_TRUE(ValidateCreateRequest(request, *typed).ok());
}

TEST_F(RequestValidationTest, RejectsCorrectionsOfOtherFields) {
  v1::CreateRequestRequest base = ValidRequest();
  base.set_type(v1::RECTIFICATION);
  *base.add_corrections() = Correction("accounts", "full_name", "Jane Roe");

  // Not personal data of that store (ip is activity's), in no store at all,
  // or not of the named collection.
  for (const v1::FieldCorrection& bad :
       {Correction("accounts", "ip", "x"), Correction("", "shoe_size", "9"),
        Correction("accounts", "full_name", "x", "orders")}) {
    v1::CreateRequestRequest request = base;
    *request.add_corrections() = bad;
    absl::Status status = Validate(request);
    ExpectRejected(status, absl::StatusCode::kInvalidArgument,
                   "corrections[1].field");
    EXPECT_THAT(std::string(status.message()), HasSubstr(bad.field()));
  }

  v1::CreateRequestRequest unknown_store = base;
  *unknown_store.add_corrections() = Correction("zzz", "email", "x");
  ExpectRejected(Validate(unknown_store), absl::StatusCode::kInvalidArgument,
                 "corrections[1].store");

  v1::CreateRequestRequest no_field = base;
  *no_field.add_corrections() = Correction("accounts", "", "x");
  ExpectRejected(Validate(no_field), absl::StatusCode::kInvalidArgument,
                 "corrections[1].field");

  v1::CreateRequestRequest too_long = base;
  *too_long.add_corrections() =
      Correction("accounts", "email", std::string(4097, 'x'));
  ExpectRejected(Validate(too_long), absl::StatusCode::kInvalidArgument,
                 "corrections[1].value");
}

TEST_F(RequestValidationTest, CorrectionsOnlyForRectification) {
  for (v1::RequestType type : {v1::ACCESS, v1::ERASURE, v1::RESTRICTION}) {
    v1::CreateRequestRequest request = ValidRequest();
    request.set_type(type);
    *request.add_corrections() = Correction("accounts", "email", "x@y.org");
    ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                   "corrections");
  }
}

TEST_F(RequestValidationTest, RequiresAnIdentity) {
  v1::CreateRequestRequest request = ValidRequest();
  request.clear_identities();
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                 "identities");
}

TEST_F(RequestValidationTest, RejectsMoreThan32Identities) {
  v1::CreateRequestRequest request = ValidRequest();
  for (int i = 0; i < 32; ++i) {
    *request.add_identities() = Identity(v1::USER_ID, std::to_string(i));
  }
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                 "identities");
}

TEST_F(RequestValidationTest, RejectsEmptyAndOverlongValues) {
  v1::CreateRequestRequest request = ValidRequest();
  request.mutable_identities(0)->set_value("   ");
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                 "identities[0].value");

  request.mutable_identities(0)->set_type(v1::USER_ID);
  request.mutable_identities(0)->set_value(std::string(321, '7'));
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                 "identities[0].value");
}

TEST_F(RequestValidationTest, RejectsMalformedEmails) {
  const std::string kBad[] = {
      "jane.example.com",                     // No @.
      "@example.com",                         // Empty local part.
      "jane@",                                // Empty domain.
      "jane@localhost",                       // No dot in the domain.
      "jane@.example.com",                    // Domain starts with a dot.
      "jane@example.com.",                    // Domain ends with a dot.
      "jane@example..com",                    // Empty domain label.
      "ja ne@example.com",                    // Space.
      "jane@exa_mple.com",                    // Bad domain character.
      "a@b@example.com",                      // Two @.
      "<jane@example.com>",                   // Angle brackets.
      "jane,doe@example.com",                 // Comma.
      std::string(65, 'j') + "@example.com",  // Local part over 64.
      "j@" + std::string(250, 'e') + ".com",  // Over 254 in all.
  };
  for (const std::string& email : kBad) {
    v1::CreateRequestRequest request = ValidRequest();
    // At index 1, so the path shows the index of the bad entry.
    *request.add_identities() = Identity(v1::EMAIL, email);
    absl::Status status = Validate(request);
    SCOPED_TRACE(email);
    ExpectRejected(status, absl::StatusCode::kInvalidArgument,
                   "identities[1].value");
    // Identity values are personal data: never echoed into error messages.
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(email)));
  }
}

TEST_F(RequestValidationTest, RejectsBadPhoneNumbers) {
  for (const std::string phone :
       {"1234", "1234567890123456", "+44 20 79x6 0958", "44+2079460958",
        "++442079460958", "0800.123.456"}) {
    v1::CreateRequestRequest request = ValidRequest();
    *request.mutable_identities(0) = Identity(v1::PHONE, phone);
    SCOPED_TRACE(phone);
    ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                   "identities[0].value");
  }
}

TEST_F(RequestValidationTest, PhonesAreReadInTheInventorysDefaultRegion) {
  absl::StatusOr<Inventory> gb = Inventory::Parse(
      absl::StrCat("default_phone_region: GB\n", kInventoryYaml), "/srv/dsar");
  ASSERT_TRUE(gb.ok()) << gb.status();
  v1::CreateRequestRequest request = ValidRequest();
  for (const std::string phone :
       {"+44 7700 454764", "+447700454764", "07700 454764", "0800.123.456"}) {
    SCOPED_TRACE(phone);
    *request.mutable_identities(0) = Identity(v1::PHONE, phone);
    EXPECT_TRUE(ValidateCreateRequest(request, *gb).ok());
  }
  // Without a default region a national number has no country.
  *request.mutable_identities(0) = Identity(v1::PHONE, "07700 454764");
  absl::Status no_region = Validate(request);
  ExpectRejected(no_region, absl::StatusCode::kInvalidArgument,
                 "identities[0].value");
  EXPECT_THAT(std::string(no_region.message()),
              HasSubstr("not a valid phone number: no valid country code"));
  *request.mutable_identities(0) = Identity(v1::PHONE, "+44 12");
  absl::Status too_short = ValidateCreateRequest(request, *gb);
  ExpectRejected(too_short, absl::StatusCode::kInvalidArgument,
                 "identities[0].value");
  EXPECT_THAT(std::string(too_short.message()),
              HasSubstr("not a valid phone number: too short"));
  EXPECT_THAT(std::string(too_short.message()), Not(HasSubstr("+44 12")));
}

TEST_F(RequestValidationTest, CustomIdentitiesNeedAValidCustomType) {
  for (const std::string& custom_type : std::vector<std::string>{
           "", "Customer", "customer-number", std::string(65, 'c')}) {
    v1::CreateRequestRequest request = ValidRequest();
    *request.add_identities() = Identity(v1::CUSTOM, "C-1001", custom_type);
    SCOPED_TRACE(custom_type);
    ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                   "identities[1].custom_type");
  }
}

TEST_F(RequestValidationTest, CustomTypeOnlyAllowedForCustomIdentities) {
  v1::CreateRequestRequest request = ValidRequest();
  request.mutable_identities(0)->set_custom_type("customer_number");
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                 "identities[0].custom_type");
}

TEST_F(RequestValidationTest, RejectsUnspecifiedAndUnknownIdentityTypes) {
  v1::CreateRequestRequest request = ValidRequest();
  request.mutable_identities(0)->set_type(v1::IDENTITY_TYPE_UNSPECIFIED);
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                 "identities[0].type");

  request.mutable_identities(0)->set_type(static_cast<v1::IdentityType>(42));
  ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                 "identities[0].type");
}

TEST_F(RequestValidationTest, RejectsUnknownRegulation) {
  for (const std::string regulation : {"HIPAA", "gdpr", " GDPR"}) {
    v1::CreateRequestRequest request = ValidRequest();
    request.set_regulation(regulation);
    SCOPED_TRACE(regulation);
    ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                   "regulation");
  }
}

TEST_F(RequestValidationTest, RejectsBadIdempotencyKeys) {
  for (const std::string& key :
       {std::string(129, 'k'), std::string("has space"),
        std::string("tab\there"), std::string("caf\xc3\xa9")}) {
    v1::CreateRequestRequest request = ValidRequest();
    request.set_idempotency_key(key);
    SCOPED_TRACE(key);
    ExpectRejected(Validate(request), absl::StatusCode::kInvalidArgument,
                   "idempotency_key");
  }
}

TEST_F(RequestValidationTest, RejectsUnknownStore) {
  v1::CreateRequestRequest request = ValidRequest();
  request.add_stores("accounts");
  request.add_stores("invoices");
  absl::Status status = Validate(request);
  ExpectRejected(status, absl::StatusCode::kInvalidArgument, "stores[1]");
  EXPECT_THAT(std::string(status.message()), HasSubstr("invoices"));
}

TEST_F(RequestValidationTest, RejectsDuplicateStore) {
  v1::CreateRequestRequest request = ValidRequest();
  request.add_stores("accounts");
  request.add_stores("orders");
  request.add_stores("accounts");
  absl::Status status = Validate(request);
  ExpectRejected(status, absl::StatusCode::kInvalidArgument, "stores[2]");
  EXPECT_THAT(std::string(status.message()), HasSubstr("duplicate"));
}

// An id of a megabyte used to come back whole in the error (and tripped
// the client's metadata limit): now it is refused quoting a short prefix.
TEST(RequestIdTest, LongOrStrangeIdsAreRefusedQuotingAPrefix) {
  EXPECT_TRUE(ValidateRequestId("id", "dsr_01HZX5J8K9ABCDEFGHJKMNPQRS").ok());
  absl::Status empty = ValidateRequestId("id", "");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.message()), HasSubstr("id: required"));
  const std::string huge(1 << 20, 'a');
  absl::Status long_id = ValidateRequestId("id", huge);
  EXPECT_EQ(long_id.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(long_id.message().size(), 200u);
  EXPECT_THAT(std::string(long_id.message()), HasSubstr("1048576 bytes"));
  EXPECT_EQ(ValidateRequestId("id", "dsr_1/../x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateRequestId("id", "dsr_\xff").code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsar
