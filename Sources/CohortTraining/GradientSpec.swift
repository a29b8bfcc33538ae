import CohortNN
import CohortTensor

/// What a worker needs to compute a micro-batch's gradient sum: the model without its weights,
/// the loss and its reduction. The coordinator sends it in WELCOME (binary, see the wire), so a
/// worker never reads a config.
package struct GradientSpec: Sendable, Equatable, Codable {
    package var model: ModelSpec
    package var loss: Loss
    package var reduction: Reduction
    /// The precision of the gradient tree's sums and of the weights workers compute on
    /// (`cluster.wire_dtype`): part of the arithmetic, so every worker must follow it.
    package var wireDType: WireDType

    package init(model: ModelSpec, loss: Loss, reduction: Reduction, wireDType: WireDType = .fp32) {
        self.model = model; self.loss = loss; self.reduction = reduction; self.wireDType = wireDType
    }

    package func makeGradient() throws(LayerShapeError) -> MicroBatchGradient {
        MicroBatchGradient(model: try model.makeModel(), loss: loss, reduction: reduction)
    }
}
