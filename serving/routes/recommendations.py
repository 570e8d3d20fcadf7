"""``POST /v1/recommendations``: the next best actions for the customer on the line."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from serving.dependencies import RecommenderDep, require
from serving.schemas import Problem, RecommendationRequest, RecommendationResponse

router = APIRouter(tags=["agent desktop"])


@router.post(
    "/v1/recommendations",
    response_model=RecommendationResponse,
    dependencies=[require("recommend")],
    responses={
        503: {
            "model": Problem,
            "description": "No model loaded yet, or the decision log cannot record the answer "
            "(an answer that cannot be logged is not given); see Retry-After.",
        }
    },
)
async def recommendations(req: RecommendationRequest, recommender: RecommenderDep) -> Response:
    """Ranked next best actions for the customer on the line, with reasons, and the
    actions held back with the rule that removed each. Logged before it is returned."""
    answer = await recommender.recommend(req)
    # Serialised directly: the answer is already a validated model, and FastAPI's
    # re-validation of the return value costs about a tenth of the whole request.
    return Response(answer.model_dump_json(), media_type="application/json")
