#include "gateway/subject_access.h"

#include "dsar/v1/admin.pb.h"  // Links AdminService into the pool.
#include "dsar/v1/requests.pb.h"
#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

Caller SubjectCaller(const nlohmann::json& claims,
                     std::set<std::string> scopes = {"dsar.read"}) {
  Caller caller;
  caller.subject = "user-1";
  caller.scopes = std::move(scopes);
  caller.claims = claims;
  return caller;
}

nlohmann::json EmailClaims(const nlohmann::json& verified) {
  nlohmann::json claims = {{"sub", "user-1"}, {"email", "Ann@Example.com"}};
  if (!verified.is_null()) claims["email_verified"] = verified;
  return claims;
}

TEST(EmailVerifiedClaimTest, OnlyTheJsonBooleanTrueCounts) {
  EXPECT_TRUE(EmailVerifiedClaim(EmailClaims(true)));
  EXPECT_FALSE(EmailVerifiedClaim(EmailClaims("true")));
  EXPECT_FALSE(EmailVerifiedClaim(EmailClaims("false")));
  EXPECT_FALSE(EmailVerifiedClaim(EmailClaims(nullptr)));  // Missing.
  EXPECT_FALSE(EmailVerifiedClaim(EmailClaims(1)));
  EXPECT_FALSE(EmailVerifiedClaim(EmailClaims(false)));
  EXPECT_FALSE(EmailVerifiedClaim(EmailClaims(nlohmann::json::array())));
  EXPECT_FALSE(EmailVerifiedClaim(nlohmann::json::object()));
}

TEST(ProvenSubjectTest, TheEmailCountsOnlyWhenVerified) {
  EXPECT_EQ(ProvenSubjectOf(SubjectCaller(EmailClaims(true))).email,
            "ann@example.com");
  for (const nlohmann::json& claim :
       {nlohmann::json("true"), nlohmann::json("false"), nlohmann::json(),
        nlohmann::json(1), nlohmann::json(false)}) {
    ProvenSubject subject = ProvenSubjectOf(SubjectCaller(EmailClaims(claim)));
    EXPECT_TRUE(subject.empty()) << claim.dump();
  }
}

TEST(ProvenSubjectTest, OwnsRequestsNamingItInCanonicalForm) {
  ProvenSubject ann = ProvenSubjectOf(SubjectCaller(EmailClaims(true)));
  v1::Request request;
  v1::SubjectIdentity* identity = request.add_identities();
  identity->set_type(v1::EMAIL);
  identity->set_value(" ANN@example.COM");
  EXPECT_TRUE(ann.Owns(request));
  identity->set_value("bob@example.com");
  EXPECT_FALSE(ann.Owns(request));
  // Same text, other kind of identity: not the same person.
  identity->set_type(v1::CUSTOM);
  identity->set_custom_type("email2");
  identity->set_value("ann@example.com");
  EXPECT_FALSE(ann.Owns(request));

  ProvenSubject by_user =
      ProvenSubjectOf(SubjectCaller({{"sub", "u"}, {"user_id", 7}}));
  EXPECT_EQ(by_user.user_id, "7");
  identity->set_type(v1::USER_ID);
  identity->set_value("7");
  EXPECT_TRUE(by_user.Owns(request));
  EXPECT_FALSE(ann.Owns(request));
}

TEST(ReachesEveryRequestTest, AdminOrServiceScope) {
  EXPECT_FALSE(ReachesEveryRequest(SubjectCaller({}, {"dsar.read"})));
  EXPECT_FALSE(
      ReachesEveryRequest(SubjectCaller({}, {"dsar.read", "dsar.pii.read"})));
  EXPECT_TRUE(ReachesEveryRequest(SubjectCaller({}, {"dsar.admin"})));
  EXPECT_TRUE(ReachesEveryRequest(SubjectCaller({}, {"dsar.service"})));
}

TEST(MaskUnreadableFieldsTest, MasksMarkedFieldsWithoutTheScope) {
  v1::ListRequestsResponse list;
  v1::Request* request = list.add_requests();
  request->set_id("r1");
  v1::SubjectIdentity* identity = request->add_identities();
  identity->set_type(v1::EMAIL);
  identity->set_value("ann@example.com");
  request->add_corrections()->set_value("New Street 1");
  v1::ListRequestsResponse unmasked = list;

  EXPECT_TRUE(MaskUnreadableFields(SubjectCaller({}, {"dsar.read"}), &list));
  EXPECT_EQ(list.requests(0).identities(0).value(), kMasked);
  EXPECT_EQ(list.requests(0).identities(0).type(), v1::EMAIL);
  EXPECT_EQ(list.requests(0).corrections(0).value(), kMasked);
  EXPECT_EQ(list.requests(0).id(), "r1");

  EXPECT_FALSE(MaskUnreadableFields(
      SubjectCaller({}, {"dsar.read", "dsar.pii.read"}), &unmasked));
  EXPECT_EQ(unmasked.requests(0).identities(0).value(), "ann@example.com");
}

TEST(MaskUnreadableFieldsTest, KnowsWhichTypesHoldMarkedFields) {
  EXPECT_TRUE(HasReadScopedFields(v1::Request::descriptor()));
  EXPECT_TRUE(HasReadScopedFields(v1::ListRequestsResponse::descriptor()));
  EXPECT_FALSE(HasReadScopedFields(v1::ListEventsResponse::descriptor()));
}

TEST(SubjectRuleForTest, NewDsarMethodsAreClosedToSubjects) {
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  const google::protobuf::ServiceDescriptor* dsar =
      pool->FindServiceByName("dsar.v1.DsarService");
  ASSERT_NE(dsar, nullptr);
  EXPECT_EQ(SubjectRuleFor(dsar->FindMethodByName("GetRequest")).kind,
            SubjectMethodRule::kOwnRequest);
  EXPECT_EQ(SubjectRuleFor(dsar->FindMethodByName("ListRequests")).kind,
            SubjectMethodRule::kListOwn);
  EXPECT_EQ(SubjectRuleFor(dsar->FindMethodByName("CancelRequest")).kind,
            SubjectMethodRule::kOperatorsOnly);
  SubjectMethodRule create_url =
      SubjectRuleFor(dsar->FindMethodByName("CreateDownloadUrl"));
  EXPECT_EQ(create_url.kind, SubjectMethodRule::kOwnRequest);
  EXPECT_EQ(create_url.request_id_field, "id");
  EXPECT_EQ(SubjectRuleFor(dsar->FindMethodByName("RevokeDownloadUrls")).kind,
            SubjectMethodRule::kOperatorsOnly);
  EXPECT_EQ(
      SubjectRuleFor(pool->FindMethodByName("dsar.v1.AdminService.ListWorkers"))
          .kind,
      SubjectMethodRule::kOperatorsOnly);
}

}  // namespace
}  // namespace dsar::gateway
